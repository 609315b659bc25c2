/**
 * The `maqet` process: its umask, its guards, `runMaqet` on its argv with the process's streams,
 * its exit code. `bin.ts` runs it (tsc's `dist/src/cli/bin.js`, Deno's `./cli`); the shipped
 * executable (`dist/src/bin/maqet.js`, see scripts/build.mjs) is a CommonJS bundle of this module.
 *
 * @example
 * ```ts
 * runMaqetProcess(); // sets process.exitCode when the command ends
 * ```
 */
// The entry loads the in-process CLI (store, XState, execa) only when no agent serves the call.
import { reportBrokenCall as reportBroken, runMaqet } from "./agent-entry.ts";
import { isTerminal } from "./is-terminal.ts";
import type { CliIo } from "./main.ts";
import { installProcessGuards } from "./process-guards.ts";

export { runMaqet };

/** A y/N question on the terminal (only when stdin is one: a script never gets a guess). */
async function confirm(question: string): Promise<boolean> {
  const { createInterface } = await import("node:readline/promises");
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N]: `)).trim());
  } finally {
    rl.close();
  }
}

export async function runMaqetProcess(): Promise<void> {
  const code = await runMaqet(process.argv.slice(2), processIo());
  process.exitCode = code;
  // Nothing should keep the process alive (QEMU is detached and unref'd), but never hang a shell.
  setTimeout(() => process.exit(code), 500).unref();
}

/** See reportBrokenCall in agent-entry.ts: quick.cjs sent the call and the connection broke. */
export async function reportBrokenCall(argv: readonly string[]): Promise<void> {
  process.exitCode = await reportBroken(argv, processIo());
}

/** The process's streams as the CLI's io, after its umask and guards. */
function processIo(): CliIo {
  // Files QEMU creates for us (serial log, sockets) are private to the user, like the runtime dir.
  process.umask(0o077);
  installProcessGuards(process, process.env);
  return {
    env: process.env,
    stdout: (text) => process.stdout.write(`${text}\n`),
    stderr: (text) => process.stderr.write(`${text}\n`),
    write: (text) => process.stdout.write(text),
    // A y/N question only when stdin is a terminal: asked when a command wants to confirm.
    get confirm() {
      return isTerminal(0) ? confirm : undefined;
    },
    // Whether stdout/stderr are terminals (colour, progress), asked when first rendered: making
    // process.stdout or process.stderr before anything is written costs a stream per call.
    tty: {
      get stdout() {
        return isTerminal(1);
      },
      get stderr() {
        return isTerminal(2);
      },
    },
    interrupt: { signals: process, exit: (c) => process.exit(c) },
    progress: {
      get isTTY() {
        return isTerminal(2);
      },
      get columns() {
        return process.stderr.columns;
      },
      write: (t) => process.stderr.write(t),
    },
  };
}
