/**
 * Reconciles a VM the stream says may be running with reality, from a process that did not
 * start it: the pid must be alive AND carry the VM's marker in its command line; then QMP is
 * reconnected and `query-status` says what the guest is doing.
 *
 * @example
 * ```ts
 * const found = await reattachQemu(ports, { pid, marker: vmId, qmpSocket });
 * if (found.kind === "attached") console.log(found.status);
 * ```
 */
import type { QmpSession, VmPorts } from "./ports.ts";

export interface ReattachInput {
  pid?: number;
  marker: string;
  qmpSocket?: string;
  /** For a start interrupted before vm.started: the pidfile its QEMU may have written. */
  pidFile?: string;
  signal?: AbortSignal;
}

export type ReattachResult =
  | { kind: "attached"; session: QmpSession; status: string; running: boolean; pid: number }
  /** No process (or a zombie, or a reused pid): QEMU is gone. `orphanKilled`: an interrupted start's QEMU, ended now. */
  | { kind: "gone"; foreignPid?: number; orphanKilled?: number }
  /** The process is alive but QMP could not be reached. */
  | { kind: "unreachable"; pid: number; error: unknown };

interface StatusInfo {
  status: string;
  running: boolean;
}

export async function reattachQemu(ports: VmPorts, input: ReattachInput): Promise<ReattachResult> {
  const { pid, marker, qmpSocket, signal } = input;
  if (pid === undefined) return rollBackInterruptedStart(ports, input);
  const state = ports.processes.probe(pid, marker);
  if (state === "gone") return { kind: "gone" };
  if (state === "foreign") return { kind: "gone", foreignPid: pid };
  if (qmpSocket === undefined) return { kind: "unreachable", pid, error: new Error("no QMP socket recorded") };
  try {
    const session = await ports.qmp.connect(qmpSocket, { timeoutMs: 5000, signal });
    const info = await session.execute<StatusInfo>("query-status", undefined, { timeoutMs: 5000, signal });
    return { kind: "attached", session, status: info.status, running: info.running, pid };
  } catch (error) {
    // It may have exited while we connected.
    if (ports.processes.probe(pid, marker) !== "alive") return { kind: "gone" };
    return { kind: "unreachable", pid, error };
  }
}

/**
 * A start that died before recording vm.started may have left QEMU running (paused by -S, its
 * pid only in the pidfile). It is rolled back: the verified process is killed, so no QEMU runs
 * that the stream does not know about.
 */
async function rollBackInterruptedStart(ports: VmPorts, input: ReattachInput): Promise<ReattachResult> {
  if (input.pidFile === undefined) return { kind: "gone" };
  // The pidfile may not be written yet (QEMU still starting, or a wrapper before its exec):
  // any live process carrying the VM's id is this start's orphan.
  const fromFile = await ports.processes.readPidFile(input.pidFile);
  const candidates = new Set([
    ...(fromFile === undefined ? [] : [fromFile]),
    ...ports.processes.findProcesses(input.marker),
  ]);
  const orphans = [...candidates].filter((pid) => ports.processes.probe(pid, input.marker) === "alive");
  if (orphans.length === 0) return { kind: "gone" };
  for (const pid of orphans) ports.processes.kill(pid, "SIGKILL");
  for (const pid of orphans) await ports.processes.waitGone(pid, input.marker, 5000, input.signal);
  return { kind: "gone", orphanKilled: orphans[0] };
}
