/**
 * A live migration its coordinator did not finish (the process died, or was killed, at any
 * phase) is settled by the next process that loads the VM, by libvirt's rule
 * (`qemuProcessRecoverMigrationIn/Out`): ownership not moved -> cancel and keep the source
 * running; moved -> the destination is the VM: it is resumed and the source is ended. What was
 * done is recorded (`vm.migration-failed{recovered}` or `vm.migrated{recovered}`), so the
 * history says which.
 *
 * Runs inside the VM's actor, right after it reconciled (VmActorDeps.recover): the actor is
 * attached to the QEMU the stream names as the VM's (the source before the commit point, the
 * destination after it).
 *
 * @example
 * ```ts
 * if (access.view.migration) await settleMigration(access, { hostName: "lab1" });
 * ```
 */
import type { NewEvent } from "../../events/envelope.ts";
import { vmEvent } from "../../events/vm-events.ts";
import type { QmpSession, VmPorts } from "../ports.ts";
import type { VmAccess } from "../vm-actor.ts";
import type { OpenMigration, VmView } from "../vm-view.ts";
import { type IncomingEntry, type MigrationTargetPort, SAME_HOST_SUFFIX } from "./incoming-migrations.ts";
import { queryMigrate, runState } from "./migration-qmp.ts";

export interface SettleDeps {
  /** This process's host name. */
  hostName: string;
  /** How long to wait for a destination still receiving the state (default 30 s). */
  waitMs?: number;
}

/** Statuses of a source migration that is still in progress (cancellable). */
const IN_FLIGHT = ["setup", "active", "pre-switchover", "device", "wait-unplug", "cancelling"];

/**
 * Settles the VM's open migration, if any. Returns what it did (for the warning a supervisor
 * prints), or undefined when nothing was open or it has to wait for another host.
 */
export async function settleMigration(access: VmAccess, deps: SettleDeps): Promise<string | undefined> {
  const open = access.view.migration;
  if (open === undefined) return resumeLeftPaused(access);
  if (open.phase !== "moved") return rollBackUnmoved(access, open, deps);
  return movedBack(open) ? settleMovedBack(access, open) : finishMoved(access, open, deps);
}

/**
 * Ownership was committed back to the source after a failed switchover (migrate-out.ts
 * `failAfterCommit`), and its coordinator stopped before recording the failure: the `target` the
 * last `vm.owner-changed` names is the source QEMU itself.
 */
function movedBack(open: OpenMigration): boolean {
  return open.target !== undefined && open.target.host === open.fromHost && open.target.pid === open.sourcePid;
}

/** The source is the VM again: resume it if the migration left it stopped, and record the failure. */
async function settleMovedBack(access: VmAccess, open: OpenMigration): Promise<string> {
  const { session } = access;
  if (session !== undefined && open.resume !== false) {
    const state = await runState(session).catch(() => "unknown");
    if (["finish-migrate", "postmigrate", "paused"].includes(state))
      await session.execute("cont").catch(() => undefined);
  }
  await access.record([
    vmEvent("vm.migration-failed", {
      migrationId: open.id,
      phase: "completion",
      reason:
        "the switchover failed and ownership went back to the source; the process coordinating the migration stopped before recording it: the source runs on",
      recovered: true,
    }),
  ]);
  return `migration ${open.id} failed at the switchover: the VM runs on its source (host '${open.fromHost}')`;
}

/** Before the commit point: the source is the VM. Cancel QEMU's migration, resume, kill the target. */
async function rollBackUnmoved(access: VmAccess, open: OpenMigration, deps: SettleDeps): Promise<string> {
  const { ports, session } = access;
  let note = "the source QEMU was gone";
  if (session !== undefined) {
    const info = await queryMigrate(session).catch(() => undefined);
    if (info && IN_FLIGHT.includes(info.status ?? "")) {
      await session.execute("migrate_cancel").catch(() => undefined);
      await settleStatus(session, ports);
    }
    const state = await runState(session).catch(() => "unknown");
    // Stopped by the migration (pre-switchover, or after a cancel there): it ran before.
    if (["finish-migrate", "postmigrate", "paused"].includes(state) && access.view.pausedDetail !== "user") {
      await session.execute("cont").catch(() => undefined);
    }
    note = `the source QEMU (pid ${access.view.pid}) runs on`;
  }
  if (open.target && open.target.host === deps.hostName) killTarget(ports, open, access.view.vmId, access.view.pid);
  await access.record([
    vmEvent("vm.migration-failed", {
      migrationId: open.id,
      phase: phaseOf(open),
      reason: `the process coordinating the migration stopped before ownership moved; rolled back: ${note}${
        open.target && open.target.host !== deps.hostName
          ? ` (host '${open.target.host}' ends its destination QEMU)`
          : ""
      }`,
      recovered: true,
    }),
  ]);
  return `migration ${open.id} rolled back: ${note}`;
}

/** After the commit point: the destination is the VM. Resume it; end the source. */
async function finishMoved(access: VmAccess, open: OpenMigration, deps: SettleDeps): Promise<string | undefined> {
  const { ports, session, view } = access;
  const sourceHere = open.fromHost === deps.hostName && open.sourcePid !== undefined && open.sourcePid !== view.pid;
  if (session === undefined && view.pid !== undefined && ports.processes.probe(view.pid, view.vmId) === "alive") {
    return undefined; // alive but its QMP not reachable now: settled at a later load
  }
  if (session === undefined) {
    // The destination QEMU is gone (the reconcile recorded how): the source is no longer the VM either.
    if (sourceHere) killPid(ports, open.sourcePid!, view.vmId);
    await access.record([
      vmEvent("vm.migration-failed", {
        migrationId: open.id,
        phase: "completion",
        reason: "ownership had moved, but the destination QEMU was gone when the VM was next loaded: the VM is stopped",
        recovered: true,
      }),
    ]);
    return `migration ${open.id}: the destination QEMU was gone`;
  }
  let state = await runState(session).catch(() => "unknown");
  if (state === "inmigrate" && sourceHere) {
    // The coordinator died between the commit and `migrate-continue`: the source waits at
    // pre-switchover with the rest of the state. Let it go on.
    await continueSource(ports, open, view.vmId);
  }
  const deadline = ports.clock.now() + (deps.waitMs ?? 30_000);
  while (state === "inmigrate" && ports.clock.now() < deadline) {
    await ports.clock.sleep(50);
    state = await runState(session).catch(() => "unknown");
  }
  if (state === "inmigrate") return undefined; // its source host has yet to send the rest: settled later
  const resume = open.resume !== false && state !== "running";
  if (resume) await session.execute("cont").catch(() => undefined);
  if (sourceHere) killPid(ports, open.sourcePid!, view.vmId);
  const events: NewEvent[] = [
    vmEvent("vm.migrated", {
      migrationId: open.id,
      fromHost: open.fromHost,
      toHost: open.toHost,
      resumed: resume || state === "running",
      recovered: true,
    }),
  ];
  await access.record(events);
  return `migration ${open.id} finished: the VM runs on host '${open.toHost}'${sourceHere ? "; the source QEMU was ended" : ""}`;
}

/**
 * A migration that completed while its destination's agent was away left the guest paused there
 * (`vm.migrated{resumed: false}`): the owner resumes it now. The `cont` is observed and recorded
 * as `vm.resumed`.
 */
async function resumeLeftPaused(access: VmAccess): Promise<string | undefined> {
  const id = access.view.resumeAfterMigration;
  if (id === undefined || access.session === undefined) return undefined;
  if ((await runState(access.session).catch(() => "unknown")) !== "paused") return undefined;
  await access.session.execute("cont");
  return `resumed after migration ${id} (its destination was not resumed when it completed)`;
}

async function continueSource(ports: VmPorts, open: OpenMigration, marker: string): Promise<void> {
  if (open.sourceQmpSocket === undefined || open.sourcePid === undefined) return;
  if (ports.processes.probe(open.sourcePid, marker) !== "alive") return;
  const source = await ports.qmp.connect(open.sourceQmpSocket, { timeoutMs: 5000 }).catch(() => undefined);
  if (source === undefined) return;
  try {
    const info = await queryMigrate(source);
    if (info.status === "pre-switchover") await source.execute("migrate-continue", { state: "pre-switchover" });
    await settleStatus(source, ports);
  } finally {
    await source.close().catch(() => undefined);
  }
}

async function settleStatus(session: QmpSession, ports: VmPorts): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const info = await queryMigrate(session).catch(() => undefined);
    if (!info || !IN_FLIGHT.includes(info.status ?? "")) return;
    await ports.clock.sleep(10);
  }
}

function killTarget(ports: VmPorts, open: OpenMigration, marker: string, vmPid: number | undefined): void {
  const pid = open.target?.pid;
  if (pid !== undefined && pid !== vmPid) killPid(ports, pid, marker);
}

function killPid(ports: VmPorts, pid: number, marker: string): void {
  if (ports.processes.probe(pid, marker) === "alive") ports.processes.kill(pid, "SIGKILL");
}

function phaseOf(open: OpenMigration) {
  return open.phase === "switchover" ? "switchover" : open.phase === "transfer" ? "transfer" : "prepare";
}

/**
 * The other hosts' half of the rule, run by a cluster member now and then (cluster-member.ts):
 * - a VM that moved away from this host while its coordinator here died: the source QEMU still
 *   waits at `pre-switchover` with the rest of the state; let it go on, then end it;
 * - an incoming QEMU this host prepared for a migration that ended without it (failed,
 *   cancelled, rolled back): kill it.
 * Returns what it did.
 *
 * @example
 * ```ts
 * for (const note of await sweepMigrations({ hostName, ports, incoming, held, foreign, readView, settleOwned })) warn(note);
 * ```
 */
export async function sweepMigrations(deps: {
  hostName: string;
  ports: VmPorts;
  incoming: Pick<MigrationTargetPort, "abort" | "finish"> & { entries(): IncomingEntry[] };
  /** The VMs this process drives (their actors' views: an open migration shows there). */
  held: readonly VmView[];
  /** The VMs owned by other hosts (a read model: their migration is read from the stream when needed). */
  foreign: readonly VmView[];
  /** The VM's view as its stream says now (not a read model that may lag). */
  readView(vmId: string): Promise<VmView | undefined>;
  /** Settles the open migration of a VM this host owns (through its actor; settleMigration). */
  settleOwned(vmId: string): Promise<string | undefined>;
}): Promise<string[]> {
  const notes: string[] = [];
  const { ports } = deps;
  const now = ports.clock.now();
  const receiving = new Set(deps.incoming.entries().map((e) => e.migrationId));
  for (const entry of deps.incoming.entries()) {
    if (now - entry.since < INCOMING_GRACE_MS) continue;
    const view = await deps.readView(entry.vmId);
    const m = view?.migration;
    if (m?.id === entry.migrationId && m.phase === "moved" && m.toHost === deps.hostName) {
      // Moved here, and nobody came to finish it (its coordinator died after the commit): once
      // the state is in, resume it and hand it to its actor (settleOwned records the outcome).
      const done = await deps.incoming
        .finish({ migrationId: m.id, resume: m.resume !== false, timeoutMs: 0 })
        .catch(() => undefined);
      if (done?.arrived) {
        const note = await deps.settleOwned(entry.vmId).catch(() => undefined);
        notes.push(`VM '${view?.name}': ${note ?? `migration ${m.id} finished here`}`);
      }
      continue;
    }
    if (m?.id === entry.migrationId) continue;
    // It is the VM now (a pid is only this host's own when the VM is placed here).
    if (view?.pid !== undefined && view.pid === entry.pid && (view.host ?? deps.hostName) === deps.hostName) continue;
    await deps.incoming.abort({ migrationId: entry.migrationId });
    notes.push(
      `migration ${entry.migrationId} ended without this host: its incoming QEMU (pid ${entry.pid}) was killed`,
    );
  }
  // Moved here, and its source host sent the rest late (its coordinator died after the commit);
  // one this process still receives is its live coordinator's to finish.
  for (const view of deps.held) {
    const m = view.migration;
    if (m?.phase !== "moved" || m.toHost !== deps.hostName || receiving.has(m.id)) continue;
    if (now - m.at.getTime() < INCOMING_GRACE_MS) continue;
    const note = await deps.settleOwned(view.vmId).catch(() => undefined);
    if (note) notes.push(`VM '${view.name}': ${note}`);
  }
  // Moved away from here while its coordinator here died: the source QEMU still runs here.
  for (const listed of deps.foreign) {
    if (!(await sourceRunsHere(ports, listed.vmId))) continue;
    const view = await deps.readView(listed.vmId);
    const m = view?.migration;
    if (!view || !m || m.phase !== "moved" || m.fromHost !== deps.hostName || m.toHost === deps.hostName) continue;
    if (m.sourcePid === undefined || ports.processes.probe(m.sourcePid, view.vmId) !== "alive") continue;
    await continueSource(ports, m, view.vmId);
    killPid(ports, m.sourcePid, view.vmId);
    notes.push(
      `VM '${view.name}' moved to '${m.toHost}': its source QEMU here (pid ${m.sourcePid}) sent the rest and was ended`,
    );
  }
  return notes;
}

/** Whether a QEMU of the VM runs from this host's runtime directory (its pidfile names a live one). */
async function sourceRunsHere(ports: VmPorts, vmId: string): Promise<boolean> {
  for (const key of [vmId, `${vmId}${SAME_HOST_SUFFIX}`]) {
    const pid = await ports.processes.readPidFile(`${ports.processes.runtimeDirOf(key)}/qemu.pid`);
    if (pid !== undefined && ports.processes.probe(pid, vmId) === "alive") return true;
  }
  return false;
}

/** An incoming QEMU younger than this is left alone (its migration's facts may not be readable yet). */
const INCOMING_GRACE_MS = 10_000;
