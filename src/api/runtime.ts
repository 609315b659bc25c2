/**
 * Wires the real adapters behind the facade: the event store (PGlite or a server), QMP, process
 * control, binary lookup, qemu-img, and the orchestrator over them. Opened lazily by
 * {@link createMaqet} on first use.
 *
 * @example
 * ```ts
 * const rt = await openRuntime({ dataDir: "/tmp/m" });
 * await rt.orchestrator.views();
 * await rt.close();
 * ```
 */
import type { Kysely } from "kysely";
import { cachedVmDirectory } from "../actors/cached-vm-directory.ts";
import { localLeases } from "../actors/local-leases.ts";
import { IncomingMigrations } from "../actors/migration/incoming-migrations.ts";
import { settleMigration, sweepMigrations } from "../actors/migration/settle-migration.ts";
import { Orchestrator } from "../actors/orchestrator.ts";
import type { VmPorts } from "../actors/ports.ts";
import { recoverOpenRequests } from "../actors/recover-requests.ts";
import { snapshotCatalogueProjection } from "../actors/snapshot-catalogue-projection.ts";
import { Supervisor } from "../actors/supervisor.ts";
import { projectedVmDirectory, vmListProjection } from "../actors/vm-list-projection.ts";
import { foldVmEvents, type VmView } from "../actors/vm-view.ts";
import { crashHookFor } from "../adapters/crash-hook.ts";
import { atLowPriority } from "../adapters/db-priority.ts";
import { defaultDataDir, defaultRuntimeRoot } from "../adapters/default-dirs.ts";
import { missingDisks } from "../adapters/disk-files.ts";
import { createDiskProvisioner } from "../adapters/disk-provisioner.ts";
import { killQemuUnder } from "../adapters/fence-guard.ts";
import { startFenceGuard } from "../adapters/fence-guard-control.ts";
import { fileReader } from "../adapters/file-reader.ts";
import { createGuestAccess } from "../adapters/guest-access.ts";
import { createHostInfo, hostCapacity } from "../adapters/host-info.ts";
import { defaultHostName } from "../adapters/host-name.ts";
import { openEventStore, systemActor } from "../adapters/open-event-store.ts";
import { createProcessControl } from "../adapters/process-control.ts";
import { currentProcessIdentity, isSameProcessAlive } from "../adapters/process-identity.ts";
import { buildQemuArgv } from "../adapters/qemu-argv.ts";
import { createQmpConnector } from "../adapters/qmp-client.ts";
import { systemClock } from "../adapters/system-clock.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { ClaimedCommand } from "../events/command-queue.ts";
import { stampEpochs } from "../events/epoch-stamping-store.ts";
import type { EventStore } from "../events/event-store.ts";
import { LeaseStore } from "../events/lease-store.ts";
import { auditProjection } from "../events/projections/audit-projection.ts";
import { ProjectionRunner } from "../events/projections/projection-runner.ts";
import type { Database } from "../events/schema.ts";
import { vmStreamId } from "../events/vm-events.ts";
import { type ClusterMember, startClusterMember } from "./cluster-member.ts";
import { ClusterRuntime } from "./cluster-runtime.ts";
import { diskToolsFor, locatorFor } from "./disk-tools.ts";
import type { MaqetOptions } from "./maqet-options.ts";
import { clusterNeedsServer } from "./route-commands.ts";
import { recordSpooledFacts } from "./store-down.ts";

export interface Runtime {
  store: EventStore;
  orchestrator: Orchestrator;
  /**
   * Keeps the read models (the VM list) in the store's database. Absent when a custom `store` was
   * given: there is no database to project into, and VM lookups fold the streams instead.
   */
  projections?: ProjectionRunner;
  /** Keeps an actor per VM (`supervise: true`); absent otherwise. */
  supervisor?: Supervisor;
  /** The store's database (read models are queried there); absent with a custom `store`. */
  db?: Kysely<Database>;
  /** The adapters the VMs use (`inspect` builds the argv a start would). */
  ports: VmPorts;
  /** Where each VM's runtime directory goes (`<runtimeRoot>/<vmId>`). */
  runtimeRoot: string;
  /** The cluster (hosts, placements, routed commands): present on a PostgreSQL server only. */
  cluster?: ClusterRuntime;
  /** This host's membership (an agent started with `--host`): present when it joined. */
  member?: ClusterMember;
  /** This process's host name (the cluster's, or the machine's on a single host). */
  hostName: string;
  /** Live migrations into this host: the destination QEMUs this process started (src/actors/migration/). */
  incoming: IncomingMigrations;
  /** Live migrations out that this process runs, by VM id: `migrate --cancel` aborts them. */
  migrations: Map<string, { migrationId: string; controller: AbortController; done?: Promise<unknown> }>;
  migrate(): Promise<string[]>;
  close(): Promise<void>;
}

/** What the facade gives the runtime: how a routed command runs here (set once the facade exists). */
export interface RuntimeHooks {
  execute?: (command: ClaimedCommand) => Promise<unknown>;
}

/** Every how many member passes (about a second each) the migration sweep looks for sources left behind. */
const FOREIGN_SCAN_EVERY = 5;

export async function openRuntime(options: MaqetOptions, hooks: RuntimeHooks = {}): Promise<Runtime> {
  const env = options.env ?? {};
  const dataDir = options.dataDir ?? defaultDataDir(env);
  const runtimeRoot = options.runtimeDir ?? defaultRuntimeRoot(env);
  const crash = crashHookFor(options.crashAt);
  const opened = options.store
    ? undefined
    : await openEventStore({
        databaseUrl: options.databaseUrl,
        dataDir: `${dataDir}/pglite`,
        lockWaitMs: options.lockWaitMs,
        source: options.source ?? "library",
        onStatement: options.onStatement,
        crash,
      });
  const store = options.store ?? opened!.store;
  if (options.cluster?.member && opened?.dialect !== "pg") {
    await opened?.close();
    throw clusterNeedsServer("agent --host");
  }
  const cluster =
    opened?.dialect === "pg"
      ? new ClusterRuntime({
          db: opened.db,
          notifications: opened.notifications,
          host: options.cluster?.host ?? defaultHostName(),
          member: options.cluster?.member === true,
          metadata: () => ({ actor: systemActor(), source: options.source ?? "library" }),
        })
      : undefined;
  // No PATH given: the process's own environment decides, through the shared locator; otherwise
  // one locator per environment, so each program is looked up once per process however many
  // maqet instances, VMs and disks ask.
  const locator = locatorFor(options);
  const leases = opened
    ? new LeaseStore(
        opened.db as unknown as Kysely<unknown>,
        currentProcessIdentity(options.command ?? process.argv.slice(1).join(" ")),
        {
          isAlive: (holder) => isSameProcessAlive(holder.pid, holder.processStart),
        },
      )
    : localLeases();
  const ports: VmPorts = {
    qmp: createQmpConnector(),
    // A member spawns QEMU only while its lease holds (a frozen agent, continued, must not).
    processes: createProcessControl({
      runtimeRoot,
      ...(cluster?.member ? { beforeSpawn: () => cluster.assertLeaseValid() } : {}),
    }),
    locator,
    disks: { ...createDiskProvisioner({ locator }), missing: missingDisks },
    host: createHostInfo(),
    clock: systemClock,
    buildArgv: buildQemuArgv,
    leases,
    files: fileReader,
    guest: createGuestAccess({ dataDir }),
    crash,
    ...options.ports,
  };
  const projections = opened
    ? new ProjectionRunner({
        db: opened.db,
        store,
        projections: [vmListProjection, auditProjection, snapshotCatalogueProjection],
        crash,
      })
    : undefined;
  if (projections && options.liveProjections) {
    projections.start({
      wakeUps: store.subscribe({ from: "end" }),
      // After a burst of appends, not between them, and behind the operations' statements: an
      // operation never waits for a catch-up its own appends started (reads catch up inline).
      quietMs: 20,
      maxDelayMs: 250,
      run: atLowPriority,
      onError: (error, name) =>
        options.onWarning?.(`projection '${name}': ${error instanceof Error ? error.message : String(error)}`),
    });
  }
  const projected = opened && projections ? projectedVmDirectory(projections, opened.db, store) : undefined;
  // The embedded store has one writer, this process: its VM list can live in memory (issue 10).
  const directory =
    projected && opened?.dialect === "pglite" ? cachedVmDirectory(projected, store.appended$) : projected;
  const onWarning = options.supervise ? options.onWarning : undefined;
  const hostName = options.cluster?.host ?? defaultHostName();
  const incoming = new IncomingMigrations(ports, hostName, options.cluster?.migrationAddress);
  /** A VM whose incoming QEMU this process holds (its QMP session) until the migration finishes. */
  const receiving = (view: VmView) => incoming.receives(view.vmId);
  /** The migration sweep reads the foreign VMs' pidfiles every FOREIGN_SCAN_EVERY-th pass only. */
  let sweeps = 0;
  const migrations: Runtime["migrations"] = new Map();
  const tools = diskToolsFor(options);
  const orchestrator = new Orchestrator({
    ports,
    // A member stamps the owner epoch it holds on its VMs' events: the store refuses stale ones.
    store: cluster?.member ? stampEpochs(store, cluster.epochOf) : store,
    directory,
    ...(cluster ? { isForeign: (view: VmView) => cluster.isForeign(view) || receiving(view) } : {}),
    onWarning,
    // A live migration or a snapshot request a dead process left open gets its outcome before
    // the VM is used.
    recover: async (access) => {
      // One this process is receiving is finished by its live coordinator, not settled here.
      const { migration, resumeAfterMigration } = access.view;
      if ((migration !== undefined && !incoming.pending.includes(migration.id)) || resumeAfterMigration !== undefined) {
        const note = await settleMigration(access, { hostName });
        if (note) options.onWarning?.(`VM '${access.view.name}': ${note}`);
      }
      if (access.view.openSnapshot === undefined && access.session === undefined) return;
      await recoverOpenRequests(access, { tool: tools.qemuImg, files: tools.files, clock: ports.clock });
    },
  });
  // A member supervises the VMs placed on its host; any other supervising process on a cluster's
  // database leaves alone the VMs placed on a host (their owner watches them).
  const membership = cluster
    ? {
        // (A VM this host is receiving by live migration is its coordinator's until it finishes.)
        accept: cluster.member
          ? (view: VmView) => cluster.owns(view.streamId) && !receiving(view)
          : (view: VmView) => !cluster.isForeign(view) && !receiving(view),
        beforeSweep: () => cluster.refresh(),
      }
    : {};
  const supervisor = options.supervise
    ? new Supervisor(orchestrator, { clock: ports.clock, onWarning, ...membership })
    : undefined;
  let member: ClusterMember | undefined;
  try {
    // Facts a `stop --force` spooled while this store was unreachable go in before any VM is
    // touched (a VM loaded first would record its vanished QEMU a second way).
    if (opened) {
      await recordSpooledFacts(store, options, (note) => options.onWarning?.(note)).catch((error: unknown) =>
        options.onWarning?.(
          `could not record the facts spooled while the store was unreachable (they stay spooled): ${error instanceof Error ? error.message : String(error)}`,
        ),
      );
    }
    if (cluster?.member) {
      member = await startClusterMember({
        cluster,
        orchestrator,
        fenceQemu: () => killQemuUnder(runtimeRoot),
        capacity: hostCapacity(),
        execute: (command) => {
          if (!hooks.execute) throw new MaqetError("INTERNAL", "No executor for routed commands.");
          return hooks.execute(command);
        },
        options: options.cluster ?? {},
        warn: (message) => options.onWarning?.(message),
        startGuard: () => startFenceGuard({ runtimeRoot, onWarning: options.onWarning }),
        sweepMigrations: async () =>
          sweepMigrations({
            hostName,
            ports,
            incoming,
            held: orchestrator.heldViews(),
            // (A source left behind after a commit is rare; looking for one costs a pidfile read per VM.)
            foreign:
              sweeps++ % FOREIGN_SCAN_EVERY === 0
                ? (await orchestrator.views()).filter((v) => v.host !== undefined && v.host !== hostName)
                : [],
            readView: async (vmId) => foldVmEvents(await store.readStream(vmStreamId(vmId))),
            settleOwned: async (vmId) =>
              (await orchestrator.actor(vmId)).exclusive((access) => settleMigration(access, { hostName, waitMs: 0 })),
          }),
      });
    }
    await supervisor?.start();
  } catch (error) {
    await member?.halt();
    cluster?.close();
    await supervisor?.stop();
    await projections?.stop();
    await orchestrator.close();
    await opened?.close();
    throw error;
  }
  return {
    store,
    orchestrator,
    hostName,
    incoming,
    migrations,
    projections,
    supervisor,
    db: opened?.db,
    ports,
    runtimeRoot,
    cluster,
    member,
    migrate: async () => (opened ? opened.migrate() : []),
    close: async () => {
      // A migration this process runs is cancelled (the VM stays on its source), not left
      // paused at its switchover for the next load to roll back.
      for (const m of migrations.values()) m.controller.abort("user");
      await Promise.allSettled([...migrations.values()].map((m) => m.done));
      await incoming.close();
      await member?.leave();
      cluster?.close();
      await supervisor?.stop();
      await projections?.stop();
      await orchestrator.close();
      await opened?.close();
    },
  };
}
