/**
 * What the `maqet` process does about its own terminal, apart from any command:
 * - a reader that stops reading (`maqet events --json | head -1`) ends the process quietly with
 *   exit 0 (EPIPE on stdout is the reader's choice, not a failure) instead of a stack trace;
 * - warnings Node or a library emits (`MaxListenersExceededWarning`, the `pg` driver's SSL-mode
 *   notice, deprecations) never reach the user's terminal: maqet reports what matters itself.
 *   With `MAQET_DEBUG=1` they are printed, for whoever is debugging.
 *
 * Node makes `process.stdout` and `process.stderr` on first use (for a pipe, a `net.Socket`: a
 * millisecond of a call through the agent, which may never write to stderr). Their guards are
 * put on as each is made, by whichever code touches it first; a stream already made, or a
 * process object without Node's lazy getters, gets its guard at once.
 *
 * @example
 * ```ts
 * installProcessGuards(process, process.env);
 * ```
 */

type GuardedProcess = Pick<NodeJS.Process, "stdout" | "stderr" | "on" | "removeAllListeners" | "exit">;

export function installProcessGuards(proc: GuardedProcess, env: Record<string, string | undefined>): void {
  onceMade(proc, "stdout", (stdout) =>
    stdout.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EPIPE") proc.exit(0);
      throw error;
    }),
  );
  // Nobody reads stderr any more: nothing left to tell, carry on (and never throw about it).
  onceMade(proc, "stderr", (stderr) => stderr.on("error", () => {}));
  // Node prints warnings through its own 'warning' listener; replace it.
  proc.removeAllListeners("warning");
  proc.on("warning", (warning: Error) => {
    if (env.MAQET_DEBUG) proc.stderr.write(`maqet: debug: ${warning.name}: ${warning.message}\n`);
  });
}

/** Runs `guard` on `proc[name]` when Node makes it (its lazy getter), or now. */
function onceMade(proc: GuardedProcess, name: "stdout" | "stderr", guard: (stream: NodeJS.WriteStream) => void): void {
  const own = Object.getOwnPropertyDescriptor(proc, name);
  const make = own?.get;
  if (make === undefined || own?.configurable !== true) {
    guard(proc[name]);
    return;
  }
  let stream: NodeJS.WriteStream | undefined;
  Object.defineProperty(proc, name, {
    configurable: true,
    enumerable: own.enumerable ?? true,
    get() {
      if (stream === undefined) {
        stream = make.call(proc) as NodeJS.WriteStream;
        guard(stream);
      }
      return stream;
    },
  });
}
