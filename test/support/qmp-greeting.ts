/**
 * Waiting for a real QEMU to serve QMP on its socket: from then on its signal handlers exist
 * (a SIGTERM is a clean shutdown, not a kill mid-start).
 *
 * @example
 * ```ts
 * const greeting = await qmpGreeting(`${dir}/qmp.sock`); // '{"QMP": {"version": ...'
 * ```
 */
import { connect } from "node:net";
import { waitForValue } from "./poll.ts";

/**
 * Connects until QEMU answers on `socketPath` and returns its greeting line; throws naming the
 * socket after `timeoutMs`.
 *
 * @example
 * ```ts
 * expect(await qmpGreeting(socket)).toContain('"QMP"');
 * ```
 */
export function qmpGreeting(socketPath: string, timeoutMs = 10_000): Promise<string> {
  return waitForValue(
    `QMP greeting on ${socketPath}`,
    () =>
      new Promise<string | undefined>((resolve) => {
        const socket = connect(socketPath);
        socket.once("error", () => resolve(undefined));
        socket.once("data", (data) => {
          socket.destroy();
          resolve(String(data));
        });
      }),
    { timeoutMs },
  );
}
