/**
 * Serial console facts of a VM's stream (part of the `vm` catalogue in vm-events.ts, kept here so
 * the interactive console is one place): who attached to the guest's serial console
 * (`maqet console -i`, the agent's upgraded `/v1/vms/:vm/console`), in which mode, whose writer
 * seat a `--force` took, and when and why each one detached. Who did it is the envelope's actor
 * (user, uid, host, pid), like every other fact. Documented in docs/events.md.
 *
 * @example
 * ```ts
 * vmEvent("vm.console-attached", { session: "0b5c…", mode: "read-write" });
 * vmEvent("vm.console-detached", { session: "0b5c…", mode: "read-write", reason: "detached", durationMs: 5300 });
 * ```
 */

/** `read-write` holds the console's one writer seat; `read-only` watches what the guest prints. */
export type ConsoleMode = "read-write" | "read-only";

/**
 * Why an attach ended. One reason means one situation:
 * - `detached`: the user pressed the escape key (Ctrl-]) or the program closed its end;
 * - `taken-over`: another writer took the seat with `--force`;
 * - `vm-stopped`: QEMU closed the console (the VM stopped);
 * - `disconnected`: the client went away without detaching (agent connection closed, terminal hung up);
 * - `signal`: the attached CLI was told to stop (SIGTERM, SIGHUP);
 * - `error`: the connection failed (its message is in `message`).
 */
export type ConsoleDetachReason = "detached" | "taken-over" | "vm-stopped" | "disconnected" | "signal" | "error";

/** Who held the writer seat before a takeover (as its lock file said). */
export interface ConsoleHolderFacts {
  user?: string;
  uid?: number;
  host?: string;
  /** The caller's pid (the CLI's, also through the agent). */
  pid?: number;
  source?: string;
  /** The process holding the connection (the CLI, or the agent serving it). */
  holderPid: number;
  /** When it attached (ISO 8601). */
  since: string;
  session: string;
}

export interface ConsoleEventData {
  "vm.console-attached": {
    /** Ties the attach to its detach. */
    session: string;
    mode: ConsoleMode;
    /** How the writer seat was taken when someone held it: by `--force`, or from a holder found dead. */
    takeover?: "forced" | "stale";
    takenOverFrom?: ConsoleHolderFacts;
  };
  "vm.console-detached": {
    session: string;
    mode: ConsoleMode;
    reason: ConsoleDetachReason;
    durationMs: number;
    /** For `error`: what failed. */
    message?: string;
  };
}

/** The current schema version of each console event type. */
export const CONSOLE_EVENT_SCHEMA: { readonly [K in keyof ConsoleEventData]: number } = {
  "vm.console-attached": 1,
  "vm.console-detached": 1,
};
