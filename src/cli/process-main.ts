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
import { isatty } from "node:tty";
import { runMaqet } from "./agent-entry.ts";
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
  // Files QEMU creates for us (serial log, sockets) are private to the user, like the runtime dir.
  process.umask(0o077);
  installProcessGuards(process, process.env);
  const code = await runMaqet(process.argv.slice(2), {
    env: process.env,
    stdout: (text) => process.stdout.write(`${text}\n`),
    stderr: (text) => process.stderr.write(`${text}\n`),
    write: (text) => process.stdout.write(text),
    // isatty(0), not process.stdin.isTTY: making process.stdin opens a stream on fd 0 (for a file,
    // with node:fs/promises and a dozen modules more) that a call which asks nothing never reads.
    ...(isatty(0) ? { confirm } : {}),
    // isatty(1), isatty(2): what makes process.stdout/stderr a tty.WriteStream, without making
    // the streams before anything is written (see process-guards.ts).
    tty: { stdout: isatty(1), stderr: isatty(2) },
    interrupt: { signals: process, exit: (c) => process.exit(c) },
    progress: {
      isTTY: isatty(2),
      get columns() {
        return process.stderr.columns;
      },
      write: (t) => process.stderr.write(t),
    },
  });
  process.exitCode = code;
  // Nothing should keep the process alive (QEMU is detached and unref'd), but never hang a shell.
  setTimeout(() => process.exit(code), 500).unref();
}
