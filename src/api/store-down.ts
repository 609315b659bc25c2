/**
 * When the PostgreSQL server is down: `stop --force` still stops the VM (found and identified
 * from its runtime directory, adapters/offline-stop.ts), and the stop's facts — the same
 * `vm.stop-requested` and `vm.stopped` a stop with the store records — are spooled on local disk
 * (adapters/fact-spool.ts). The next maqet instance that opens that store records them before
 * anything else touches a VM ({@link recordSpooledFacts}): nothing lost (the spool is fsynced
 * before the command reports success), nothing duplicated (fixed event ids, idempotent appends;
 * a VM whose stream already shows it stopped gets nothing more).
 *
 * @example
 * ```ts
 * const result = await stopWhileStoreDown(options, "web", storeError); // throws storeError when it cannot help
 * ```
 */
import type { VmView } from "../actors/vm-view.ts";
import { foldVmEvents } from "../actors/vm-view.ts";
import { defaultDataDir, defaultRuntimeRoot } from "../adapters/default-dirs.ts";
import { drainSpool, type SpooledFacts, spoolFacts, spoolPath, spoolStoreKey } from "../adapters/fact-spool.ts";
import { forceStopWithoutStore } from "../adapters/offline-stop.ts";
import { systemActor } from "../adapters/open-event-store.ts";
import { isMaqetError, MaqetError } from "../errors/maqet-error.ts";
import type { EventStore } from "../events/event-store.ts";
import { vmEvent, vmStreamId } from "../events/vm-events.ts";
import type { MaqetOptions } from "./maqet-options.ts";
import type { VmStatus } from "./vm-status.ts";

/** What `stop --force` returns when it stopped the VM without the store. */
export interface SpooledStop extends VmStatus {
  alreadyStopped: false;
  /** Where the stop's facts wait for the store (they are recorded by the next command). */
  spooled: { path: string; events: string[] };
}

/** True for the failure to reach a PostgreSQL server (not a refused or broken store). */
export function isStoreUnreachable(error: unknown, options: MaqetOptions): boolean {
  return (
    isMaqetError(error, "STORE_ERROR") &&
    options.databaseUrl !== undefined &&
    options.store === undefined &&
    /Cannot connect to the PostgreSQL server/.test(error.message)
  );
}

export async function stopWhileStoreDown(
  options: MaqetOptions,
  name: string,
  storeError: unknown,
): Promise<SpooledStop> {
  const env = options.env ?? {};
  const runtimeRoot = options.runtimeDir ?? defaultRuntimeRoot(env);
  const dataDir = options.dataDir ?? defaultDataDir(env);
  const stopped = await forceStopWithoutStore(name, { runtimeRoot });
  if (stopped === undefined) {
    throw new MaqetError(
      "STORE_ERROR",
      `${(storeError as Error).message} No running QEMU of VM '${name}' was found in ${runtimeRoot} to stop without it.`,
      { cause: storeError, details: (storeError as MaqetError).details },
    );
  }
  const now = new Date().toISOString();
  const metadata = {
    actor: systemActor(),
    correlationId: crypto.randomUUID(),
    source: options.source ?? "library",
    spooledAt: now,
  };
  const events = [
    { ...vmEvent("vm.stop-requested", { force: true, timeoutMs: 0 }), id: crypto.randomUUID(), metadata },
    {
      ...vmEvent("vm.stopped", {
        detail: "destroyed",
        method: "sigkill",
        pid: stopped.pid,
        exitCode: null,
        signal: "SIGKILL",
      }),
      id: crypto.randomUUID(),
      metadata,
    },
  ];
  const path = spoolPath(dataDir);
  await spoolFacts(path, {
    store: spoolStoreKey(options.databaseUrl, `${dataDir}/pglite`),
    streamId: vmStreamId(stopped.vmId),
    vmId: stopped.vmId,
    name: stopped.name,
    events,
    spooledAt: now,
  });
  return {
    name: stopped.name,
    id: stopped.vmId,
    state: "stopped",
    pid: null,
    detail: "destroyed",
    qmpSocket: null,
    runtimeDir: null,
    serialLog: null,
    qemuVersion: null,
    memory: null,
    cpu: null,
    accel: "auto",
    accelInUse: null,
    disks: [],
    lastStop: { detail: "destroyed", method: "sigkill", guest: null, reason: null, at: now },
    host: null,
    migration: null,
    lastError: null,
    definedAt: now,
    startedAt: null,
    updatedAt: now,
    version: -1,
    tainted: null,
    alreadyStopped: false,
    spooled: { path, events: events.map((e) => e.type) },
  };
}

/**
 * Records the facts spooled for this store, before the instance is used; says what it recorded
 * through `onNote`. A batch already in the store, or for a VM whose stream shows it stopped or
 * removed since, is dropped from the spool without a second record.
 */
export async function recordSpooledFacts(
  store: EventStore,
  options: MaqetOptions,
  onNote: (message: string) => void,
): Promise<void> {
  const env = options.env ?? {};
  const dataDir = options.dataDir ?? defaultDataDir(env);
  const key = spoolStoreKey(options.databaseUrl, `${dataDir}/pglite`);
  await drainSpool(spoolPath(dataDir), async (facts: SpooledFacts) => {
    if (facts.store !== key) return false;
    const stored = await store.readStream(facts.streamId);
    if (stored.some((e) => e.id === facts.events[0]!.id)) return true;
    const view: VmView | undefined = foldVmEvents(stored);
    if (view === undefined || view.status === "stopped" || view.status === "removed") return true;
    await store.append(facts.streamId, facts.events, { expectedVersion: stored.at(-1)?.streamVersion ?? "no_stream" });
    onNote(
      `recorded the stop of VM '${facts.name}' made at ${facts.spooledAt} while the store was unreachable (${facts.events.map((e) => e.type).join(", ")}).`,
    );
    return true;
  });
}
