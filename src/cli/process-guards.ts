/**
 * What the `maqet` process does about its own terminal, apart from any command:
 * - a reader that stops reading (`maqet events --json | head -1`) ends the process quietly with
 *   exit 0 (EPIPE on stdout is the reader's choice, not a failure) instead of a stack trace;
 * - warnings Node or a library emits (`MaxListenersExceededWarning`, the `pg` driver's SSL-mode
 *   notice, deprecations) never reach the user's terminal: maqet reports what matters itself.
 *   With `MAQET_DEBUG=1` they are printed, for whoever is debugging.
 *
 * @example
 * ```ts
 * installProcessGuards(process, process.env);
 * ```
 */

type GuardedProcess = Pick<NodeJS.Process, "stdout" | "stderr" | "on" | "removeAllListeners" | "exit">;

export function installProcessGuards(proc: GuardedProcess, env: Record<string, string | undefined>): void {
  proc.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") proc.exit(0);
    throw error;
  });
  // Nobody reads stderr any more: nothing left to tell, carry on (and never throw about it).
  proc.stderr.on("error", () => {});
  // Node prints warnings through its own 'warning' listener; replace it.
  proc.removeAllListeners("warning");
  proc.on("warning", (warning: Error) => {
    if (env.MAQET_DEBUG) proc.stderr.write(`maqet: debug: ${warning.name}: ${warning.message}\n`);
  });
}
