/**
 * The VM list on its projection, on both dialects: `maqet_vms` rows equal a fold of the streams
 * (the same `applyVmEvent`), a rebuild gives identical rows, `ls`/`status` read O(VMs) rows and
 * never replay a stream, the liveness reconcile still records what it finds, and VM names are
 * unique even when two writers race (the name claim commits with the append).
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Kysely, Migrator, sql } from "kysely";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { migrations } from "../../migrations/index.ts";
import { Orchestrator } from "../../src/actors/orchestrator.ts";
import { foldingVmDirectory, type VmDirectory } from "../../src/actors/vm-directory.ts";
import { projectedVmDirectory, VM_LIST_PROJECTION, vmListProjection } from "../../src/actors/vm-list-projection.ts";
import { foldVmEvents, type VmView } from "../../src/actors/vm-view.ts";
import { openPgDatabase } from "../../src/adapters/pg-database.ts";
import { createMaqet } from "../../src/api/maqet.ts";
import { openRuntime } from "../../src/api/runtime.ts";
import type { VmConfig } from "../../src/config/vm-config.ts";
import { isMaqetError } from "../../src/errors/maqet-error.ts";
import type { NewEvent, StoredEvent } from "../../src/events/envelope.ts";
import type { EventStore, ReadAllOptions, ReadStreamOptions } from "../../src/events/event-store.ts";
import { migrateToLatest } from "../../src/events/migrate.ts";
import { PostgresEventStore } from "../../src/events/postgres-event-store.ts";
import { ProjectionRunner } from "../../src/events/projections/projection-runner.ts";
import { vmStreamId } from "../../src/events/vm-events.ts";
import { isVmNameTaken } from "../../src/events/vm-name-claim.ts";
import { projectRoot } from "../support/build-dist.ts";
import { createCliSandbox } from "../support/cli-runner.ts";
import { createFakeWorld } from "../support/fake-ports.ts";
import { waitUntil } from "../support/poll.ts";
import { createTestDatabase } from "../support/postgres-cluster.ts";
import { event } from "../support/store-events.ts";
import { openForSuite, type TestDatabase, testDatabases } from "../support/test-databases.ts";

const config: VmConfig = { accel: "tcg", memory: "64M", args: [], arguments: [], storage: [] };

/** Counts the events a store hands out, to prove what a read costs. */
class CountingStore {
  readAllEvents = 0;
  readAllCalls = 0;
  readStreamCalls = 0;
  constructor(readonly inner: PostgresEventStore) {}
  async readAll(options?: ReadAllOptions): Promise<StoredEvent[]> {
    this.readAllCalls++;
    const events = await this.inner.readAll(options);
    this.readAllEvents += events.length;
    return events;
  }
  async readStream(streamId: string, options?: ReadStreamOptions): Promise<StoredEvent[]> {
    this.readStreamCalls++;
    return this.inner.readStream(streamId, options);
  }
  reset(): void {
    this.readAllEvents = 0;
    this.readAllCalls = 0;
    this.readStreamCalls = 0;
  }
}

/** A small deterministic generator (no flaky seeds). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Every lifecycle fact, with plausible data, so the fold goes through all its cases. */
function randomFact(random: () => number, vm: number): NewEvent {
  const pid = 10_000 + Math.floor(random() * 1000);
  const facts: NewEvent[] = [
    event("vm.start-requested", { timeoutMs: 30_000 }),
    event("vm.started", {
      pid,
      qmpSocket: `/run/maqet/${vm}/qmp.sock`,
      runtimeDir: `/run/maqet/${vm}`,
      pidFile: `/run/maqet/${vm}/qemu.pid`,
      argv: ["-S"],
      binary: "/usr/bin/qemu-system-x86_64",
      accel: "tcg",
      qemuVersion: "7.2.22",
      durationMs: 40,
    }),
    event("vm.start-failed", { reason: "START_FAILED", message: "boom", durationMs: 3 }),
    event("vm.stop-requested", { force: false, timeoutMs: 30_000 }),
    event("vm.stopped", { detail: random() < 0.5 ? "shutdown" : "crashed", method: "quit", guest: true, pid }),
    event("vm.paused", { detail: "user" }),
    event("vm.resumed", {}),
    event("qmp.command-executed", { command: "query-status", argumentNames: [], outcome: "ok", durationMs: 1 }),
    event("disk.created", { drive: "hdd", file: "/tmp/x.qcow2", format: "qcow2", durationMs: 2 }),
    event("vm.future-fact", { from: "a newer maqet" }),
  ];
  return facts[Math.floor(random() * facts.length)]!;
}

// Thousands of events per test: minutes on a loaded 2-core machine.
const slow = { timeout: 300_000 };
describe.each(testDatabases({ ownCluster: true }))("VM list projection on $name", slow, (testDialect) => {
  const dialect = testDialect.name;
  let t: TestDatabase;
  let store: PostgresEventStore;
  let runner: ProjectionRunner;
  let directory: VmDirectory;
  let counter = 0;
  const uniqueName = (base: string) => `${base}-${dialect}-${++counter}`;

  async function define(name: string): Promise<string> {
    const vmId = crypto.randomUUID();
    await store.append(vmStreamId(vmId), [event("vm.defined", { vmId, name, config: { ...config, name } })], {
      expectedVersion: "no_stream",
    });
    return vmId;
  }

  /** Every VM stream folded from its own events: the reference the projection must equal. */
  async function folded(): Promise<VmView[]> {
    const streams = new Set((await store.readAll({ category: "vm" })).map((e) => e.streamId));
    const views: VmView[] = [];
    for (const streamId of streams) {
      const view = foldVmEvents(await store.readStream(streamId));
      if (view) views.push(view);
    }
    return views;
  }

  const byStream = (views: VmView[]) => [...views].sort((a, b) => a.streamId.localeCompare(b.streamId));

  openForSuite(testDialect, (opened) => ({ t, store } = opened));
  beforeAll(() => {
    runner = new ProjectionRunner({
      db: t.db,
      store,
      batchSize: 7,
      rebuildBatchSize: 11,
      projections: [vmListProjection],
    });
    directory = projectedVmDirectory(runner, t.db);
  });

  it("rows equal a fold of each stream, across batches and catch-ups; rebuild gives identical rows", async () => {
    const random = lcg(42);
    const vms: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 8; i++) vms.push(await define(uniqueName("fold")));
      for (let i = 0; i < 120; i++) {
        const vm = vms[Math.floor(random() * vms.length)]!;
        const events = Array.from({ length: 1 + Math.floor(random() * 3) }, () => randomFact(random, vms.indexOf(vm)));
        if (random() < 0.03) events.push(event("vm.removed", { force: false }));
        await store.append(vmStreamId(vm), events);
      }
      await runner.catchUp(VM_LIST_PROJECTION);
      expect(byStream(await directory.list({ includeRemoved: true }))).toEqual(byStream(await folded()));
    }
    const live = (await folded()).filter((v) => v.status !== "removed");
    expect(byStream(await directory.list())).toEqual(byStream(live));
    expect(live.length).toBeLessThan(vms.length); // some were removed

    // The columns are the same view's fields.
    const { rows } = await sql<{
      stream_id: string;
      name: string;
      status: string;
      pid: number | null;
      version: string;
    }>`
      select stream_id, name, status, pid, version from maqet_vms`.execute(t.db);
    for (const view of await folded()) {
      const row = rows.find((r) => r.stream_id === view.streamId)!;
      expect({ ...row, version: Number(row.version) }).toEqual({
        stream_id: view.streamId,
        name: view.name,
        status: view.status,
        pid: view.pid ?? null,
        version: view.version,
      });
    }

    const before = await sql`select * from maqet_vms order by stream_id`.execute(t.db);
    const result = await runner.rebuild(VM_LIST_PROJECTION);
    expect(result.rebuilt).toBe(true);
    expect((await sql`select * from maqet_vms order by stream_id`.execute(t.db)).rows).toEqual(before.rows);
    expect((await runner.lag(VM_LIST_PROJECTION)).eventsBehind).toBe(0);
  });

  it("rows stay equal to the fold when a batch fails once and when two runners race (the row cache is dropped each time)", async () => {
    const random = lcg(99);
    const vms: string[] = [];
    for (let i = 0; i < 12; i++) vms.push(await define(uniqueName("cache")));
    for (let i = 0; i < 150; i++) {
      const vm = vms[Math.floor(random() * vms.length)]!;
      await store.append(vmStreamId(vm), [randomFact(random, i)]);
    }
    let calls = 0;
    const flaky = {
      ...vmListProjection,
      rebuilder: undefined, // the batch path: its row cache is what this test is about
      apply: async (...args: Parameters<typeof vmListProjection.apply>) => {
        await vmListProjection.apply(...args);
        if (++calls === 3) throw new Error("lost the connection (simulated), after writing");
      },
    };
    const flakyRunner = new ProjectionRunner({
      db: t.db,
      store,
      batchSize: 9,
      rebuildBatchSize: 9,
      projections: [flaky],
    });
    await flakyRunner.rebuild(VM_LIST_PROJECTION);
    expect(byStream(await directory.list({ includeRemoved: true }))).toEqual(byStream(await folded()));

    for (let i = 0; i < 150; i++) {
      const vm = vms[Math.floor(random() * vms.length)]!;
      await store.append(vmStreamId(vm), [randomFact(random, i)]);
    }
    const second = t.url ? await openPgDatabase({ url: t.url }) : undefined;
    try {
      const runners = [t.db, second?.db ?? t.db].map(
        (db) =>
          new ProjectionRunner({
            db,
            store: new PostgresEventStore(db),
            batchSize: 4,
            rebuildBatchSize: 5,
            projections: [vmListProjection],
          }),
      );
      await Promise.all([runners[0]!.catchUp(VM_LIST_PROJECTION), runners[1]!.catchUp(VM_LIST_PROJECTION)]);
      await Promise.all([runners[1]!.rebuild(VM_LIST_PROJECTION), runners[0]!.catchUp(VM_LIST_PROJECTION)]);
    } finally {
      await second?.close();
    }
    expect(byStream(await directory.list({ includeRemoved: true }))).toEqual(byStream(await folded()));
  });

  it("a fast rebuild (folded in memory, written once) gives the same rows as the batch path, every column", async () => {
    const random = lcg(1234);
    const vms: string[] = [];
    for (let i = 0; i < 10; i++) vms.push(await define(uniqueName("fast")));
    for (let i = 0; i < 200; i++) {
      const vm = vms[Math.floor(random() * vms.length)]!;
      const events = Array.from({ length: 1 + Math.floor(random() * 3) }, () => randomFact(random, i));
      if (random() < 0.02) events.push(event("vm.removed", { force: false }));
      await store.append(vmStreamId(vm), events);
    }
    // A stream whose first events come before its vm.defined: not listed until defined.
    const late = crypto.randomUUID();
    await store.append(vmStreamId(late), [event("vm.future-fact", {}), event("vm.paused", { detail: "user" })]);
    await store.append(vmStreamId(late), [event("vm.defined", { vmId: late, name: uniqueName("late"), config })]);
    const batchPath = { ...vmListProjection, rebuilder: undefined };
    const rows = () => sql`select * from maqet_vms order by stream_id`.execute(t.db).then((r) => r.rows);
    const slow = new ProjectionRunner({
      db: t.db,
      store,
      batchSize: 7,
      rebuildBatchSize: 13,
      projections: [batchPath],
    });
    expect(await slow.rebuild(VM_LIST_PROJECTION)).toMatchObject({ rebuilt: true });
    const bySlowPath = await rows();
    const fast = await runner.rebuild(VM_LIST_PROJECTION);
    expect(fast).toMatchObject({
      rebuilt: true,
      events: (await store.readAll({ category: "vm" })).length,
      batches: 1,
    });
    expect(await rows()).toEqual(bySlowPath);
    expect(bySlowPath.some((r) => (r as { stream_id: string }).stream_id === vmStreamId(late))).toBe(true);
    expect(byStream(await directory.list({ includeRemoved: true }))).toEqual(byStream(await folded()));
    // And the batches after it go on from the rows it wrote (its cache, then the table).
    for (const vm of vms.slice(0, 5)) await store.append(vmStreamId(vm), [event("vm.paused", { detail: "user" })]);
    expect(await runner.catchUp(VM_LIST_PROJECTION)).toMatchObject({ events: 5 });
    expect(byStream(await directory.list({ includeRemoved: true }))).toEqual(byStream(await folded()));
  });

  it("ls and status read the projection: O(VMs) rows, no stream replayed (1000 VMs x 10 events)", async () => {
    // Settled VMs only (a VM mid-start or mid-stop is reconciled by loading its actor: another test).
    const stopped = event("vm.stopped", { detail: "destroyed", method: "sigkill" });
    for (const view of await directory.list()) {
      if (view.status !== "stopped") await store.append(view.streamId, [stopped]);
    }
    const already = (await directory.list()).length;
    const random = lcg(7);
    for (let i = 0; i < 1000; i++) {
      const vmId = crypto.randomUUID();
      const name = uniqueName("many");
      const events = [event("vm.defined", { vmId, name, config: { ...config, name } })];
      for (let k = 1; k < 9; k++) events.push(randomFact(random, i));
      events.push(stopped);
      await store.append(vmStreamId(vmId), events, { expectedVersion: "no_stream" });
    }
    const counting = new CountingStore(store);
    const world = createFakeWorld();
    const countingRunner = new ProjectionRunner({ db: t.db, store: counting, projections: [vmListProjection] });
    const orchestrator = new Orchestrator({
      ports: world.ports,
      store: counting as unknown as EventStore,
      directory: projectedVmDirectory(countingRunner, t.db),
    });
    const firstStarted = performance.now();
    expect(await orchestrator.views()).toHaveLength(already + 1000);
    const catchUpMs = performance.now() - firstStarted;
    expect(counting.readAllEvents).toBe(10_000); // the first read catches the projection up once

    counting.reset();
    const started = performance.now();
    const listed = await orchestrator.liveViews();
    const lsMs = performance.now() - started;
    expect(listed).toHaveLength(already + 1000);
    const one = listed.at(-1)!;
    expect((await orchestrator.liveView(one.name)).vmId).toBe(one.vmId);
    // Caught up: each read is one empty probe of the store, and no stream is read.
    expect(counting.readAllEvents).toBe(0);
    expect(counting.readStreamCalls).toBe(0);
    expect(counting.readAllCalls).toBe(2);

    // New facts cost what they are, not the history: one event read for one event appended.
    await store.append(one.streamId, [event("vm.paused", { detail: "user" })]);
    counting.reset();
    expect((await orchestrator.liveView(one.name)).pausedDetail).toBe("user");
    expect(counting.readAllEvents).toBe(1);
    expect(counting.readStreamCalls).toBe(0);
    const foldStarted = performance.now();
    expect(await foldingVmDirectory(store).list()).toHaveLength(already + 1000);
    const foldMs = performance.now() - foldStarted;
    console.log(
      `[vm-list ${dialect}] first catch-up of 10,000 events: ${catchUpMs.toFixed(0)} ms; ` +
        `ls of ${already + 1000} VMs from the projection: ${lsMs.toFixed(1)} ms (folding every stream: ${foldMs.toFixed(0)} ms)`,
    );
  });

  it("a VM the projection calls running whose process is gone is reconciled by its actor; the projection then shows it stopped", async () => {
    const world = createFakeWorld();
    const orchestrator = new Orchestrator({ ports: world.ports, store, directory });
    const name = uniqueName("ghost");
    const vmId = await define(name);
    await store.append(vmStreamId(vmId), [
      event("vm.start-requested", { timeoutMs: 1000 }),
      event("vm.started", {
        pid: 987_654,
        qmpSocket: `/run/maqet/${vmId}/qmp.sock`,
        runtimeDir: `/run/maqet/${vmId}`,
        pidFile: `/run/maqet/${vmId}/qemu.pid`,
        argv: [],
        binary: "/usr/bin/qemu-system-x86_64",
        accel: "tcg",
        durationMs: 1,
      }),
    ]);
    expect((await orchestrator.find(name)).status).toBe("running");
    const checked = await orchestrator.liveView(name);
    expect(checked.status).toBe("stopped");
    expect(checked.lastStop?.detail).toBe("exited-unsupervised");
    await orchestrator.close();
    // A fresh orchestrator (another process) reads it from the projection, caught up.
    const later = new Orchestrator({ ports: createFakeWorld().ports, store, directory });
    expect((await later.find(name)).lastStop?.detail).toBe("exited-unsupervised");
    expect((await store.readStream(vmStreamId(vmId))).at(-1)!.type).toBe("vm.stopped");
  });

  it("a name is claimed with the append: a define whose check saw nothing still fails with VM_EXISTS", async () => {
    const world = createFakeWorld();
    const blind: VmDirectory = { list: async () => [], find: async () => undefined };
    const a = new Orchestrator({ ports: world.ports, store, directory: blind });
    const b = new Orchestrator({ ports: world.ports, store, directory: blind });
    const name = uniqueName("claimed");
    const first = await a.define(config, { name });
    const error = await b.define(config, { name }).catch((e: unknown) => e);
    expect(error).toBeMaqetError("VM_EXISTS");
    expect(isVmNameTaken(error)).toBe(true);
    // Nothing of the loser was written.
    const defined = (await store.readAll({ category: "vm" })).filter(
      (e) => e.type === "vm.defined" && (e.data as { name: string }).name === name,
    );
    expect(defined.map((e) => e.streamId)).toEqual([first.streamId]);

    // A raw append hits the same wall.
    const raw = await define(name).catch((e: unknown) => e);
    expect(isVmNameTaken(raw)).toBe(true);

    // Removing the VM frees the name, even for a directory that has not seen the removal yet:
    // where the store claims names, its answer is the one define trusts.
    await store.append(first.streamId, [event("vm.removed", { force: false })]);
    const stale: VmDirectory = { list: async () => [first], find: async () => first, namesClaimedByStore: true };
    const again = await new Orchestrator({ ports: world.ports, store, directory: stale }).define(config, { name });
    expect(again.vmId).not.toBe(first.vmId);
    expect((await directory.find(name))?.vmId).toBe(again.vmId);
    // And a name taken for real is refused by the store, the directory's view notwithstanding.
    const refused = await new Orchestrator({ ports: world.ports, store, directory: stale })
      .define(config, { name })
      .catch((e: unknown) => e);
    expect(refused).toBeMaqetError("VM_EXISTS");
  });

  if (dialect !== "pg") {
    console.log(
      "[vm-list-projection " +
        dialect +
        "] skipped the cases with two connections or processes: PGlite has one session",
    );
  }

  it.runIf(dialect === "pg")(
    "two connections racing to define the same 20 names: exactly one wins each, the other gets VM_EXISTS",
    async () => {
      const other = await openPgDatabase({ url: t.url! });
      try {
        const stores = [store, new PostgresEventStore(other.db)];
        // Both checks run before either append: the database alone decides.
        let arrived = 0;
        let release!: () => void;
        const barrier = new Promise<void>((resolve) => {
          release = resolve;
        });
        const racing = (): VmDirectory => ({
          list: async () => [],
          find: async () => {
            if (++arrived === 2) release();
            await barrier;
            return undefined;
          },
        });
        const names = Array.from({ length: 20 }, () => uniqueName("race"));
        let wins = 0;
        let losses = 0;
        for (const name of names) {
          arrived = 0;
          const [x, y] = stores.map(
            (s) => new Orchestrator({ ports: createFakeWorld().ports, store: s, directory: racing() }),
          );
          const results = await Promise.allSettled([x!.define(config, { name }), y!.define(config, { name })]);
          for (const r of results) {
            if (r.status === "fulfilled") wins++;
            else if (isMaqetError(r.reason, "VM_EXISTS")) losses++;
            else throw r.reason;
          }
        }
        expect({ wins, losses }).toEqual({ wins: 20, losses: 20 });
        const listed = (await directory.list()).filter((v) => names.includes(v.name));
        expect(listed.map((v) => v.name).sort()).toEqual([...names].sort());
      } finally {
        await other.close();
      }
    },
  );

  it.runIf(dialect === "pg")(
    "two processes adding the same 15 names at once through the facade: each name is added once",
    async () => {
      const names = Array.from({ length: 15 }, () => uniqueName("proc"));
      type Outcome = { name: string; ok: boolean; code?: string };
      const children = [0, 1].map(() => {
        const child = spawn(
          process.execPath,
          [join(projectRoot, "test/fixtures/add-vms-child.mjs"), join(projectRoot, "dist"), t.url!, ...names],
          { stdio: ["pipe", "pipe", "inherit"] },
        );
        let out = "";
        const ready = new Promise<void>((resolve, reject) => {
          child.stdout.on("data", (chunk: Buffer) => {
            out += chunk.toString();
            if (out.includes("ready\n")) resolve();
          });
          child.once("exit", (code) => reject(new Error(`child exited ${code} before ready: ${out}`)));
        });
        const result = new Promise<Outcome[]>((resolve, reject) => {
          child.once("exit", (code) => {
            const line = out.split("\n").find((l) => l.startsWith("result "));
            if (code === 0 && line) resolve(JSON.parse(line.slice("result ".length)));
            else reject(new Error(`child exited ${code}: ${out}`));
          });
        });
        return { child, ready, result };
      });
      await Promise.all(children.map((c) => c.ready));
      for (const c of children) c.child.stdin!.end("go\n");
      const [first, second] = await Promise.all(children.map((c) => c.result));
      for (const name of names) {
        const outcomes = [first!.find((r) => r.name === name)!, second!.find((r) => r.name === name)!];
        expect(outcomes.filter((o) => o.ok)).toHaveLength(1);
        expect(outcomes.find((o) => !o.ok)?.code).toBe("VM_EXISTS");
      }
      const defined = (await store.readAll({ category: "vm" })).filter(
        (e) => e.type === "vm.defined" && names.includes((e.data as { name: string }).name),
      );
      expect(defined).toHaveLength(names.length);
    },
  );
});

describe("VM name claims for VMs defined before migration 0003", () => {
  const url = inject("databaseUrl");
  it.skipIf(!url)(
    "are backfilled (PostgreSQL server); the first defined keeps a name history holds twice",
    async () => {
      const testDb = await createTestDatabase(url);
      const opened = await openPgDatabase({ url: testDb.url });
      try {
        const db = opened.db as unknown as Kysely<unknown>;
        const migrator = new Migrator({
          db,
          provider: { getMigrations: async () => Object.fromEntries(migrations.map((m) => [m.name, m.migration])) },
          migrationTableName: "maqet_migrations",
          migrationLockTableName: "maqet_migrations_lock",
        });
        const upTo = await migrator.migrateTo("0001-initial");
        expect(upTo.error).toBeUndefined();
        const insert = async (stream: string, version: number, type: string, data: unknown) => {
          await sql`insert into maqet_streams (stream_id, version) values (${stream}, ${version})
                  on conflict (stream_id) do update set version = excluded.version`.execute(db);
          await sql`insert into maqet_events (event_id, stream_id, stream_version, type, schema_version, data, metadata)
                  values (${crypto.randomUUID()}::uuid, ${stream}, ${version}, ${type}, 1, ${JSON.stringify(data)}::jsonb, '{}'::jsonb)`.execute(
            db,
          );
        };
        await insert("vm-a", 0, "vm.defined", { vmId: "a", name: "twice", config });
        await insert("vm-b", 0, "vm.defined", { vmId: "b", name: "twice", config });
        await insert("vm-c", 0, "vm.defined", { vmId: "c", name: "gone", config });
        await insert("vm-c", 1, "vm.removed", { force: false });
        await migrateToLatest(opened.db);
        const { rows } = await sql<{ name: string; vm_id: string }>`
        select name, vm_id from maqet_vm_names order by name`.execute(db);
        expect(rows).toEqual([{ name: "twice", vm_id: "a" }]);
      } finally {
        await opened.close();
        await testDb.drop();
      }
    },
  );
});

// Each test opens a fresh embedded store: a minute or more on a loaded 2-core machine.
describe("the facade lists from the projection (embedded store)", { timeout: 180_000 }, () => {
  it("maqet projections shows each read model's lag; projections rebuild replays one (the CLI as a user runs it)", async () => {
    const cli = await createCliSandbox();
    try {
      const config = join(cli.home, "web.yaml");
      await writeFile(config, "name: web\nmemory: 64M\n");
      expect((await cli.run(["add", config])).code).toBe(0);
      expect((await cli.run(["ls"])).code).toBe(0);
      const listed = await cli.run(["projections", "--json"]);
      expect(listed.code, listed.stderr).toBe(0);
      const infos = listed.json<Array<{ name: string; status: string; eventsBehind: number; position: number }>>();
      expect(infos.find((p) => p.name === VM_LIST_PROJECTION)).toMatchObject({ status: "running", eventsBehind: 0 });
      const table = await cli.run(["projections"]);
      expect(table.stdout).toMatch(/NAME\s+STATUS\s+POSITION/);
      const rebuilt = await cli.run(["projections", "rebuild", VM_LIST_PROJECTION]);
      expect(rebuilt.code, rebuilt.stderr).toBe(0);
      expect(rebuilt.stdout).toMatch(/^Rebuilt 'vms': 1 events in 1 batches/);
      expect((await cli.run(["status", "web", "--json"])).json()).toMatchObject({ name: "web", state: "stopped" });
      const unknown = await cli.run(["projections", "rebuild", "nosuch"]);
      expect(unknown.code).toBe(3);
      expect(unknown.stderr).toContain("Unknown projection 'nosuch'");
    } finally {
      await cli.cleanup();
    }
  }, 120_000); // seven CLI processes, each opening the embedded store (1-5 s under load)

  it("with liveProjections the runtime keeps the VM list caught up without a read", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "maqet-vm-live-"));
    const rt = await openRuntime({ dataDir, runtimeDir: join(dataDir, "run"), env: {}, liveProjections: true });
    try {
      await rt.orchestrator.define(config, { name: "live" });
      const lag = await waitUntil(
        "the live VM list projection to catch up",
        () => rt.projections!.lag(VM_LIST_PROJECTION),
        (l) => l.eventsBehind === 0 && l.position > 0,
        { timeoutMs: 60_000, everyMs: 20 },
      );
      expect(lag).toMatchObject({ eventsBehind: 0, status: "running" });
      expect(lag.position).toBeGreaterThan(0);
    } finally {
      await rt.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("add, ls, status, rm, ls", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "maqet-vm-list-"));
    const maqet = createMaqet({ dataDir, runtimeDir: join(dataDir, "run"), env: {} });
    try {
      await maqet.add({ memory: "64M" }, { name: "alpha" });
      await maqet.add({ memory: "128M" }, { name: "beta" });
      expect((await maqet.list()).map((s) => [s.name, s.state, s.memory])).toEqual([
        ["alpha", "stopped", "64M"],
        ["beta", "stopped", "128M"],
      ]);
      expect(await maqet.status("beta")).toMatchObject({ name: "beta", state: "stopped", pid: null, version: 0 });
      const duplicate = await maqet.add({ memory: "64M" }, { name: "alpha" }).catch((e: unknown) => e);
      expect(duplicate).toBeMaqetError("VM_EXISTS");
      await maqet.remove("alpha");
      expect((await maqet.list()).map((s) => s.name)).toEqual(["beta"]);
      const missing = await maqet.status("alpha").catch((e: unknown) => e);
      expect(missing).toBeMaqetError("VM_NOT_FOUND");
    } finally {
      await maqet.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
