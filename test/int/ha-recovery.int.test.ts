/**
 * HA recovery's choice of a new host, on PGlite and on the PostgreSQL server (real host rows,
 * placements and streams; the VM views and the start are stand-ins): a VM added with
 * `--constraint` is recovered only onto a host that carries those labels, even when the scheduler
 * would otherwise prefer another (fewer VMs); with no such host it waits, placed where it was.
 */
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import type { Orchestrator } from "../../src/actors/orchestrator.ts";
import type { VmView } from "../../src/actors/vm-view.ts";
import { ClusterRuntime } from "../../src/api/cluster-runtime.ts";
import { recoverHaVms } from "../../src/api/ha-recovery.ts";
import { validateVmConfig } from "../../src/config/parse-vm-config.ts";
import type { ClaimedCommand } from "../../src/events/command-queue.ts";
import type { EventMetadata } from "../../src/events/envelope.ts";
import { PostgresEventStore } from "../../src/events/postgres-event-store.ts";
import { vmEvent, vmStreamId } from "../../src/events/vm-events.ts";
import { type TestDatabase, testDatabases } from "../support/test-databases.ts";

const meta = (): EventMetadata => ({ actor: { user: "t", uid: 1, host: "h", pid: 1 }, source: "test" });

describe.each(testDatabases())("HA recovery placement on $name", ({ open }) => {
  let t: TestDatabase | undefined;
  let store: PostgresEventStore | undefined;
  afterEach(async () => {
    await store?.close();
    await t?.close();
    t = undefined;
    store = undefined;
  });

  async function setUp() {
    t = await open();
    store = new PostgresEventStore(t.db, { actor: () => meta().actor, source: "test" });
    const cluster = new ClusterRuntime({ db: t.db, host: "observer", member: false, metadata: meta });
    // a: no label, no VM (the scheduler's favourite); b: zone=y with one VM; c: zone=y, about to die.
    for (const [name, labels] of [
      ["a", {}],
      ["b", { zone: "y" }],
      ["c", { zone: "y" }],
    ] as const) {
      await cluster.hosts.join({
        name,
        labels,
        capacity: { memoryBytes: 8 << 30, cpus: 2 },
        leaseTtlMs: 10_000,
        fenceAfterMs: 5_000,
      });
    }
    const views: VmView[] = [];
    const define = async (name: string, host: string, constraints?: Record<string, string>) => {
      const vmId = crypto.randomUUID();
      const config = validateVmConfig({ memory: "64M", ha: "restart" }, { source: "test", baseDir: "/tmp" });
      await store!.append(vmStreamId(vmId), [vmEvent("vm.defined", { vmId, name, config })], {
        expectedVersion: "no_stream",
      });
      await cluster.placements.place(vmId, host, constraints ? "new" : "pinned", {
        expectFrom: null,
        ...(constraints ? { constraints } : {}),
      });
      views.push({ vmId, name, streamId: vmStreamId(vmId), config, status: "running", host } as VmView);
      return vmId;
    };
    const orchestrator = { views: async () => views } as unknown as Orchestrator;
    const started: string[] = [];
    const execute = async (command: ClaimedCommand) => {
      started.push(String(command.args[0]));
      return null;
    };
    return { cluster, define, orchestrator, started, execute };
  }

  const fence = (name: string) =>
    sql`update maqet_hosts set fenced_at = clock_timestamp(), fence_method = 'mark-dead', recorded_state = 'fenced',
               lease_expires_at = clock_timestamp() - interval '1 minute'
         where name = ${name}`.execute(t!.db);

  it("a VM added with --constraint goes only to a host carrying its labels", async () => {
    const { cluster, define, orchestrator, started, execute } = await setUp();
    await define("other", "b");
    const web = await define("web", "c", { zone: "y" });
    const free = await define("free", "c");
    await fence("c");
    await recoverHaVms({ cluster, orchestrator, execute, warn: () => {} });
    // Unconstrained: the scheduler's pick (fewest VMs) is a. Constrained: b, the only other zone=y host.
    expect(await cluster.placements.ownerOf(free)).toMatchObject({ host: "a", reason: "recovery" });
    expect(await cluster.placements.ownerOf(web)).toMatchObject({ host: "b", reason: "recovery", epoch: 2 });
    expect(started.sort()).toEqual([free, web].sort());
    // The new vm.placed carries the constraints on: a second move honours them too.
    expect(await cluster.placements.constraintsOf(web)).toEqual({ zone: "y" });
    const { rows } = await sql<{ data: unknown }>`
      select data from maqet_events where stream_id = ${vmStreamId(web)} and type = 'vm.placed'
       order by stream_version desc limit 1`.execute(t!.db);
    const last = typeof rows[0]!.data === "string" ? JSON.parse(rows[0]!.data) : rows[0]!.data;
    expect(last).toMatchObject({ host: "b", from: "c", constraints: { zone: "y" } });
  });

  it("with no host carrying its labels it stays where it was, told why, and goes once one comes", async () => {
    const { cluster, define, orchestrator, started, execute } = await setUp();
    const web = await define("web", "c", { zone: "y" });
    await fence("b");
    await fence("c");
    const warnings: string[] = [];
    await recoverHaVms({ cluster, orchestrator, execute, warn: (m) => warnings.push(m) });
    expect(await cluster.placements.ownerOf(web)).toMatchObject({ host: "c", epoch: 1 });
    expect(started).toEqual([]);
    expect(warnings.join("\n")).toMatch(/VM 'web' cannot be recovered yet/);
    // b comes back: the next pass moves it there (never to a).
    await cluster.hosts.join({
      name: "b",
      labels: { zone: "y" },
      capacity: { memoryBytes: 8 << 30, cpus: 2 },
      leaseTtlMs: 10_000,
      fenceAfterMs: 5_000,
    });
    await recoverHaVms({ cluster, orchestrator, execute, warn: () => {} });
    expect(await cluster.placements.ownerOf(web)).toMatchObject({ host: "b", epoch: 2 });
    expect(started).toEqual([web]);
  });
});
