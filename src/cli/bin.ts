#!/usr/bin/env node
/**
 * The `maqet` executable.
 *
 * @example
 * ```sh
 * maqet add examples/demo.yaml && maqet start demo && maqet status demo --json
 * ```
 */
// The entry loads the in-process CLI (store, XState, execa) only when no agent serves the call.
import { runMaqet } from "./agent-entry.ts";
import { installProcessGuards } from "./process-guards.ts";

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

// Files QEMU creates for us (serial log, sockets) are private to the user, like the runtime dir.
process.umask(0o077);
installProcessGuards(process, process.env);
const code = await runMaqet(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
  write: (text) => process.stdout.write(text),
  ...(process.stdin.isTTY === true ? { confirm } : {}),
  tty: { stdout: process.stdout.isTTY === true, stderr: process.stderr.isTTY === true },
  interrupt: { signals: process, exit: (c) => process.exit(c) },
  progress: {
    isTTY: process.stderr.isTTY === true,
    columns: process.stderr.columns,
    write: (t) => process.stderr.write(t),
  },
});
process.exitCode = code;
// Nothing should keep the process alive (QEMU is detached and unref'd), but never hang a shell.
setTimeout(() => process.exit(code), 500).unref();
