/**
 * The owner epoch (fencing token) at the stream, on PGlite and on the PostgreSQL server: an
 * append whose events carry an epoch that is not the VM's current one is refused inside the
 * append's own transaction (STALE_EPOCH, nothing written); a placement change raises the epoch
 * with its `vm.placed` in one transaction; and (server) an append that decided on the old epoch
 * commits before the placement that would make it stale, never after.
 */
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { validateVmConfig } from "../../src/config/parse-vm-config.ts";
import { appendToStream } from "../../src/events/append-to-stream.ts";
import type { EventMetadata } from "../../src/events/envelope.ts";
import { HostRegistry } from "../../src/events/host-registry.ts";
import { PlacementStore } from "../../src/events/placement-store.ts";
import type { PostgresEventStore } from "../../src/events/postgres-event-store.ts";
import { uuidv7 } from "../../src/events/uuidv7.ts";
import { vmEvent, vmStreamId } from "../../src/events/vm-events.ts";
import { waitForLockWaiters } from "../support/pg-locks.ts";
import { openPerTest, type TestDatabase, testDatabases } from "../support/test-databases.ts";

const meta = (): EventMetadata => ({ actor: { user: "t", uid: 1, host: "h", pid: 1 }, source: "test" });

describe.each(testDatabases())("owner epoch on $name", (dialect) => {
  const { name } = dialect;
  const fresh = openPerTest(dialect, { actor: () => meta().actor, source: "test" });
  let t: TestDatabase | undefined;
  let store: PostgresEventStore | undefined;

  async function defineVm(): Promise<{ vmId: string; streamId: string; placements: PlacementStore }> {
    ({ t, store } = await fresh());
    const vmId = crypto.randomUUID();
    await store.append(
      vmStreamId(vmId),
      [
        vmEvent("vm.defined", {
          vmId,
          name: `vm-${vmId.slice(0, 8)}`,
          config: validateVmConfig({ memory: "64M" }, { source: "test", baseDir: "/tmp" }),
        }),
      ],
      { expectedVersion: "no_stream" },
    );
    return { vmId, streamId: vmStreamId(vmId), placements: new PlacementStore(t.db, meta) };
  }

  const reset = (epoch?: number) => ({
    ...vmEvent("vm.reset", { guest: false }),
    ...(epoch === undefined ? {} : { metadata: { epoch } }),
  });

  it("refuses an append under an older epoch; accepts the current one", async () => {
    const { vmId, streamId, placements } = await defineVm();
    // Unplaced: epoch 0 is the current one.
    await store!.append(streamId, [reset(0)]);
    await expect(store!.append(streamId, [reset(1)])).rejects.toMatchObject({ code: "STALE_EPOCH" });

    const first = await placements.place(vmId, "h1", "pinned");
    expect(first).toMatchObject({ host: "h1", epoch: 1 });
    await store!.append(streamId, [reset(1)]);
    const second = await placements.place(vmId, "h2", "evacuation", { expectFrom: "h1" });
    expect(second.epoch).toBe(2);

    const before = await store!.streamVersion(streamId);
    const refused = await store!.append(streamId, [reset(1), reset(1)]).catch((e: unknown) => e);
    expect(refused).toMatchObject({
      code: "STALE_EPOCH",
      details: { streamId, epoch: 1, currentEpoch: 2, owner: "h2" },
    });
    expect((refused as Error).message).toMatch(/epoch 1.*epoch 2 \(owner: h2\)/);
    // Nothing of the refused append was written.
    expect(await store!.streamVersion(streamId)).toBe(before);
    await store!.append(streamId, [reset(2)]);
    // A writer that holds no epoch (a single-host process) is not checked.
    await store!.append(streamId, [reset()]);

    const types = (await store!.readStream(streamId)).map((e) => [e.type, e.metadata.epoch ?? null]);
    expect(types).toEqual([
      ["vm.defined", null],
      ["vm.reset", 0],
      ["vm.placed", 1],
      ["vm.reset", 1],
      ["vm.placed", 2],
      ["vm.reset", 2],
      ["vm.reset", null],
    ]);
    const placed = (await store!.readStream(streamId)).filter((e) => e.type === "vm.placed").map((e) => e.data);
    expect(placed).toEqual([
      { host: "h1", reason: "pinned", epoch: 1 },
      { host: "h2", reason: "evacuation", epoch: 2, from: "h1" },
    ]);
    expect(await placements.ownerOf(vmId)).toMatchObject({ host: "h2", epoch: 2 });
  });

  it("a placement that expected another owner is refused and changes nothing", async () => {
    const { vmId, streamId, placements } = await defineVm();
    await placements.place(vmId, "h1", "new", { expectFrom: null });
    await expect(placements.place(vmId, "h3", "recovery", { expectFrom: "h2" })).rejects.toMatchObject({
      code: "CONCURRENCY_CONFLICT",
    });
    expect(await placements.ownerOf(vmId)).toMatchObject({ host: "h1", epoch: 1 });
    expect((await store!.readStream(streamId)).map((e) => e.type)).toEqual(["vm.defined", "vm.placed"]);
  });

  it("an HA recovery moves a VM only while its old host is still fenced: a host that re-joined first keeps it", async () => {
    const { vmId, streamId, placements } = await defineVm();
    const hosts = new HostRegistry(t!.db, meta);
    const join = () =>
      hosts.join({
        name: "h1",
        labels: {},
        capacity: { memoryBytes: 1 << 30, cpus: 1 },
        leaseTtlMs: 10_000,
        fenceAfterMs: 5_000,
      });
    await join();
    await placements.place(vmId, "h1", "new", { expectFrom: null });
    await sql`update maqet_hosts set fenced_at = clock_timestamp(), fence_method = 'grace' where name = 'h1'`.execute(
      t!.db,
    );
    // The observer read "h1 fenced"; h1 comes back before its placement runs.
    await join();
    await expect(
      placements.place(vmId, "h2", "recovery", { expectFrom: "h1", expectFenced: true }),
    ).rejects.toMatchObject({ code: "CONCURRENCY_CONFLICT", message: expect.stringMatching(/no longer fenced/) });
    expect(await placements.ownerOf(vmId)).toMatchObject({ host: "h1", epoch: 1 });
    // Still fenced: the recovery goes through.
    await sql`update maqet_hosts set fenced_at = clock_timestamp(), fence_method = 'grace' where name = 'h1'`.execute(
      t!.db,
    );
    expect(await placements.place(vmId, "h2", "recovery", { expectFrom: "h1", expectFenced: true })).toMatchObject({
      host: "h2",
      epoch: 2,
    });
    expect((await store!.readStream(streamId)).map((e) => e.type)).toEqual(["vm.defined", "vm.placed", "vm.placed"]);
  });

  it.skipIf(name === "pglite")(
    "an append holding the old epoch commits before the placement change, never after (server only: a race needs two connections)",
    async () => {
      const { vmId, streamId, placements } = await defineVm();
      await placements.place(vmId, "h1", "new");
      // The old owner's append is in flight (its transaction open, its epoch check passed).
      const trx = await t!.db.startTransaction().execute();
      await appendToStream(trx, streamId, [{ id: uuidv7(), ...reset(1), metadata: { ...meta(), epoch: 1 } }], "any");
      const moving = placements.place(vmId, "h2", "evacuation");
      await waitForLockWaiters(t!.db, 1);
      await trx.commit().execute();
      expect(await moving).toMatchObject({ epoch: 2 });
      const events = await store!.readStream(streamId);
      expect(events.map((e) => `${e.type}@${e.metadata.epoch ?? "-"}`)).toEqual([
        "vm.defined@-",
        "vm.placed@1",
        "vm.reset@1",
        "vm.placed@2",
      ]);
      // And the other order: the placement first; the old owner's append then waits and is refused.
      const placing = await t!.db.startTransaction().execute();
      await sql`select version from maqet_streams where stream_id = ${streamId} for update`.execute(placing);
      await sql`update maqet_placements set epoch = 3, host = 'h3' where stream_id = ${streamId}`.execute(placing);
      const late = store!.append(streamId, [reset(2)]).catch((e: unknown) => e);
      await waitForLockWaiters(t!.db, 1);
      await placing.commit().execute();
      expect(await late).toMatchObject({ code: "STALE_EPOCH", details: { currentEpoch: 3 } });
    },
  );
});
