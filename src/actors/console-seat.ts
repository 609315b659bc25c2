/**
 * The serial console's one writer seat: who may type into a VM's serial port. Many may watch
 * (`console --follow`, `console -i --read-only`), one may write (`console -i`): QEMU's socket
 * chardev serves one client at a time and silently queues the next, so maqet decides first and
 * refuses a second writer with who holds the seat. Pure: the holder record (kept in
 * `console.lock` in the VM's runtime directory by src/adapters/console-lock.ts) and liveness in,
 * a decision out.
 *
 * @example
 * ```ts
 * decideSeat(undefined, { force: false, host: "lab1", qemuPid: 77 }, () => true); // { kind: "free" }
 * decideSeat(alice, { force: false, host: "lab1", qemuPid: 77 }, () => true);     // { kind: "busy", holder: alice }
 * decideSeat(alice, { force: true, host: "lab1", qemuPid: 77 }, () => true);      // { kind: "forced", previous: alice }
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";
import type { ConsoleHolderFacts } from "../events/console-events.ts";

/** The record of the seat's holder (the lock file's content). */
export interface ConsoleHolder extends ConsoleHolderFacts {
  /** The host of the process holding the connection. */
  holderHost: string;
  /** The kernel's start time of `holderPid` (/proc/<pid>/stat field 22): a reused pid is not the holder. */
  holderStart?: string;
  /** The QEMU process of the run it attached to: a lock left from an earlier run is stale. */
  qemuPid?: number;
}

export interface SeatRequest {
  force: boolean;
  /** This host (a holder on another host cannot be checked, so it is never taken as stale). */
  host: string;
  /** The VM's QEMU pid now. */
  qemuPid?: number;
}

export type SeatDecision =
  | { kind: "free" }
  /** The holder's process is gone (or it attached to an earlier run): taken without --force. */
  | { kind: "stale"; previous: ConsoleHolder }
  | { kind: "forced"; previous: ConsoleHolder }
  | { kind: "busy"; holder: ConsoleHolder };

/** Decides what an attach for writing may do, given the current holder (if any). */
export function decideSeat(
  current: ConsoleHolder | undefined,
  request: SeatRequest,
  isAlive: (holder: ConsoleHolder) => boolean,
): SeatDecision {
  if (current === undefined) return { kind: "free" };
  const earlierRun =
    current.qemuPid !== undefined && request.qemuPid !== undefined && current.qemuPid !== request.qemuPid;
  const gone = current.holderHost === request.host && !isAlive(current);
  if (earlierRun || gone) return { kind: "stale", previous: current };
  if (request.force) return { kind: "forced", previous: current };
  return { kind: "busy", holder: current };
}

/** Who holds the seat, in words: `alice (uid 1000, pid 4242 on lab1, via cli)`. */
export function describeHolder(holder: ConsoleHolderFacts & { holderHost?: string }): string {
  const facts = [
    holder.uid !== undefined ? `uid ${holder.uid}` : undefined,
    `pid ${holder.pid ?? holder.holderPid}${(holder.host ?? holder.holderHost) ? ` on ${holder.host ?? holder.holderHost}` : ""}`,
    holder.source !== undefined ? `via ${holder.source}` : undefined,
  ].filter(Boolean);
  return `${holder.user ?? "someone"} (${facts.join(", ")})`;
}

/** The CONSOLE_BUSY error for a refused second writer. */
export function consoleBusyError(vm: string, holder: ConsoleHolder): MaqetError {
  return new MaqetError(
    "CONSOLE_BUSY",
    `VM '${vm}' serial console is held by ${describeHolder(holder)} since ${holder.since}. Attach read-only with --read-only, or take it over with --force.`,
    { details: { vm, holder: { ...holder } } },
  );
}
