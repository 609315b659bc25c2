/**
 * The running-VM observer: forwards QMP run-state events to the VM machine and reports the
 * process's end (QMP EOF, then the exit itself) so a crash is recorded the moment it happens.
 *
 * @example
 * ```ts
 * const stop = watchQemu(ports, { pid, marker, session }, (e) => actor.send(e));
 * ```
 */
import type { LaunchedProcess, QmpEvent, QmpSession, VmPorts } from "./ports.ts";

export type WatchEvent =
  /** `status`: the run state the STOP left (paused, io-error, watchdog, guest-panicked), inferred from the event before it. */
  | { type: "QMP.STOP"; status?: string }
  | { type: "QMP.RESUME" }
  | { type: "QMP.SHUTDOWN"; guest: boolean; reason?: string }
  | { type: "QMP.RESET"; guest: boolean; reason?: string }
  /** ACPI S3: the guest suspended itself (no STOP precedes it). */
  | { type: "QMP.SUSPEND" }
  | { type: "QMP.WAKEUP" }
  | { type: "QMP.GUEST_PANICKED"; action?: string }
  | { type: "PROCESS.EXITED"; exitCode: number | null; signal: string | null }
  /** QMP dropped but the process is still alive. */
  | { type: "QMP.LOST" };

export interface WatchInput {
  pid: number;
  marker: string;
  session: QmpSession;
  launched?: LaunchedProcess;
}

/** Starts watching; returns the function that stops watching (it does not touch QEMU). */
export function watchQemu(ports: VmPorts, input: WatchInput, send: (event: WatchEvent) => void): () => void {
  const abort = new AbortController();
  // Synchronous on purpose: a STOP is reported the moment it arrives (before the reply of the
  // command that caused it), so nothing depends on another QMP round trip a closing CLI may cut.
  const translate = createTranslator();
  const subscription = input.session.events$.subscribe({
    next: (e) => {
      const event = translate(e);
      if (event !== undefined) send(event);
    },
    error: () => undefined,
  });
  input.session.closed
    .then(async () => {
      if (abort.signal.aborted) return;
      const exit = input.launched
        ? await Promise.race([input.launched.exit, ports.clock.sleep(3000, abort.signal).then(() => undefined)])
        : undefined;
      if (abort.signal.aborted) return;
      const gone =
        exit !== undefined ||
        (await ports.processes.waitGone(input.pid, input.marker, 3000, abort.signal).catch(() => false));
      if (abort.signal.aborted) return;
      if (gone) send({ type: "PROCESS.EXITED", exitCode: exit?.code ?? null, signal: exit?.signal ?? null });
      else send({ type: "QMP.LOST" });
    })
    .catch(() => undefined);
  return () => {
    abort.abort();
    subscription.unsubscribe();
  };
}

/**
 * QMP events to machine events. QEMU announces why it pauses with the event just before STOP
 * (BLOCK_IO_ERROR, WATCHDOG, GUEST_PANICKED with a pausing action); a bare STOP is a `stop`
 * command (user). This is libvirt's reading too, and costs no `query-status`.
 */
export function createTranslator(): (e: QmpEvent) => WatchEvent | undefined {
  let cause: string | undefined;
  return (e) => {
    const data = e.data ?? {};
    const guest = data.guest === true;
    const reason = typeof data.reason === "string" ? data.reason : undefined;
    switch (e.event) {
      case "BLOCK_IO_ERROR":
        if (data.action === "stop") cause = "io-error";
        return undefined;
      case "WATCHDOG":
        if (data.action === "pause") cause = "watchdog";
        return undefined;
      case "GUEST_PANICKED":
        if (data.action === "pause") cause = "guest-panicked";
        return { type: "QMP.GUEST_PANICKED", action: typeof data.action === "string" ? data.action : undefined };
      case "SUSPEND":
        return { type: "QMP.SUSPEND" };
      case "WAKEUP":
        return { type: "QMP.WAKEUP" };
      case "JOB_STATUS_CHANGE":
        // maqet's live snapshot jobs (ids maqet-snapshot-save-*, maqet-snapshot-load-*) pause the guest.
        if (data.status === "running" && /^maqet-snapshot-(save|load)-/.test(String(data.id))) cause = "snapshot";
        if (data.status === "concluded" && cause === "snapshot") cause = undefined;
        return undefined;
      case "STOP": {
        const status = cause ?? "paused";
        cause = undefined;
        return { type: "QMP.STOP", status };
      }
      case "RESUME":
        cause = undefined;
        return { type: "QMP.RESUME" };
      case "SHUTDOWN":
        return { type: "QMP.SHUTDOWN", guest, reason };
      case "RESET":
        return { type: "QMP.RESET", guest, reason };
      default:
        return undefined;
    }
  };
}
