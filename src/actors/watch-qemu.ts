/**
 * The running-VM observer: forwards QMP run-state events to the VM machine and reports the
 * process's end (QMP EOF, then the exit itself) so a crash is recorded the moment it happens.
 *
 * @example
 * ```ts
 * const stop = watchQemu(ports, { pid, marker, session }, (e) => actor.send(e));
 * ```
 */
import { concatMap } from "rxjs";
import type { LaunchedProcess, QmpEvent, QmpSession, VmPorts } from "./ports.ts";

export type WatchEvent =
  /** `status` is QEMU's run state right after the STOP (paused, io-error, watchdog...). */
  | { type: "QMP.STOP"; status?: string }
  | { type: "QMP.RESUME" }
  | { type: "QMP.SHUTDOWN"; guest: boolean; reason?: string }
  | { type: "QMP.RESET"; guest: boolean; reason?: string }
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
  // concatMap keeps QEMU's order even though a STOP waits for its query-status answer.
  const subscription = input.session.events$.pipe(concatMap((e) => translate(input.session, e))).subscribe({
    next: (event) => {
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

async function translate(session: QmpSession, e: QmpEvent): Promise<WatchEvent | undefined> {
  const data = e.data ?? {};
  const guest = data.guest === true;
  const reason = typeof data.reason === "string" ? data.reason : undefined;
  switch (e.event) {
    case "STOP": {
      const info = await session
        .execute<{ status: string }>("query-status", undefined, { timeoutMs: 2000 })
        .catch(() => undefined);
      return { type: "QMP.STOP", status: info?.status };
    }
    case "RESUME":
      return { type: "QMP.RESUME" };
    case "SHUTDOWN":
      return { type: "QMP.SHUTDOWN", guest, reason };
    case "RESET":
      return { type: "QMP.RESET", guest, reason };
    default:
      return undefined;
  }
}
