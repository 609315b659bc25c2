/**
 * Maps QEMU's run state after a STOP (`query-status`) to the `vm.paused` detail code,
 * libvirt-style: one detail, one situation.
 *
 * @example
 * ```ts
 * pausedDetailOf("io-error"); // "ioerror"
 * ```
 */
import type { PausedDetail } from "../events/vm-events.ts";

export function pausedDetailOf(runState: string | undefined): PausedDetail {
  switch (runState) {
    case "paused":
      return "user";
    case "io-error":
      return "ioerror";
    case "watchdog":
      return "watchdog";
    case "guest-panicked":
      return "guest-panic";
    case "suspended":
      return "suspended";
    case "shutdown":
      return "shutdown";
    case "snapshot":
      return "snapshot";
    default:
      return "unknown";
  }
}
