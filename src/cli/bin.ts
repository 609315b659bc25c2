#!/usr/bin/env node
/**
 * The `maqet` executable.
 *
 * @example
 * ```sh
 * maqet add examples/demo.yaml && maqet start demo && maqet status demo --json
 * ```
 */
import { runCli } from "./main.ts";
import { installProcessGuards } from "./process-guards.ts";

// Files QEMU creates for us (serial log, sockets) are private to the user, like the runtime dir.
process.umask(0o077);
installProcessGuards(process, process.env);
const code = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
  write: (text) => process.stdout.write(text),
  progress: {
    isTTY: process.stderr.isTTY === true,
    columns: process.stderr.columns,
    write: (t) => process.stderr.write(t),
  },
});
process.exitCode = code;
// Nothing should keep the process alive (QEMU is detached and unref'd), but never hang a shell.
setTimeout(() => process.exit(code), 500).unref();
