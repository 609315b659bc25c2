/**
 * Many hosts on one PostgreSQL, as a new user tries it: three real agents (`maqet agent --host
 * a|b|c`, each with its own runtime directory and socket) on one database of this test run, real
 * QEMU (firmware-only VMs). VMs added without --host spread over the hosts, `--host` pins; from
 * host a's CLI, a VM owned by host c starts, answers QMP and stops — on host c (its QEMU's
 * runtime directory is c's), its progress shown by a's CLI; `host ls` shows the hosts;
 * `status --json` says where a VM is.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { qemuPidsOf } from "../support/agent-helpers.ts";
import { type SimCluster, type Status, startCluster } from "../support/cluster-harness.ts";
import { createTestDatabase } from "../support/postgres-cluster.ts";

const firmwareVm = (name: string) => `name: ${name}
binary: /usr/bin/qemu-system-x86_64
accel: tcg
memory: 64M
`;

const databaseUrl = inject("databaseUrl");

describe.skipIf(!databaseUrl)("a cluster of three agents on one PostgreSQL (real QEMU)", { timeout: 400_000 }, () => {
  let cluster: SimCluster;
  let dropDb: () => Promise<void>;
  beforeAll(async () => {
    const db = await createTestDatabase(databaseUrl);
    dropDb = db.drop;
    cluster = await startCluster(["a", "b", "c"], { url: db.url });
    for (const name of ["s1", "s2", "s3", "s4", "s5", "s6", "pinned"]) {
      await writeFile(join(cluster.home, `${name}.yaml`), firmwareVm(name));
    }
  }, 400_000);
  afterAll(async () => {
    await cluster?.stop();
    await dropDb?.();
  }, 120_000);

  it("host ls shows the three hosts up, with capacity, labels and last renewal", async () => {
    const r = await cluster.cli("a", ["host", "ls", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const hosts = r.json<Array<Record<string, unknown>>>();
    expect(hosts.map((h) => [h.name, h.state, h.vms])).toEqual([
      ["a", "up", 0],
      ["b", "up", 0],
      ["c", "up", 0],
    ]);
    for (const h of hosts) {
      expect(h.capacity).toMatchObject({ cpus: expect.any(Number), memoryBytes: expect.any(Number) });
      expect((h.capacity as { cpus: number }).cpus).toBeGreaterThan(0);
      expect(Date.parse(String(h.lastRenewal))).toBeGreaterThan(Date.now() - 60_000);
    }
    const text = await cluster.cli("b", ["host", "ls"]);
    expect(text.stdout).toMatch(/NAME\s+STATE\s+VMS/);
  });

  it("VMs added without --host spread over the hosts; --host pins; bad placements are refused", async () => {
    const placed: Record<string, string> = {};
    for (const [i, name] of ["s1", "s2", "s3", "s4", "s5", "s6"].entries()) {
      const from = ["a", "b", "c"][i % 3]!;
      const r = await cluster.cli(from, ["add", `${name}.yaml`, "--json"]);
      expect(r.code, r.stderr).toBe(0);
      placed[name] = r.json<Status>().host!;
    }
    const counts: Record<string, number> = {};
    for (const h of Object.values(placed)) counts[h] = (counts[h] ?? 0) + 1;
    expect(counts).toEqual({ a: 2, b: 2, c: 2 });

    const pinned = await cluster.cli("a", ["add", "pinned.yaml", "--host", "c", "--json"]);
    expect(pinned.code, pinned.stderr).toBe(0);
    expect(pinned.json<Status>().host).toBe("c");

    const nowhere = await cluster.cli("a", ["add", "pinned.yaml", "--name", "x1", "--host", "zz"]);
    expect(nowhere.code).toBe(3);
    expect(nowhere.stderr).toMatch(/Host 'zz' not found\. Known hosts: a, b, c/);
    const unfit = await cluster.cli("a", ["add", "pinned.yaml", "--name", "x2", "--constraint", "zone=mars"]);
    expect(unfit.code).toBe(1);
    expect(unfit.stderr).toMatch(/No host can take the VM \(constraints: zone=mars\)/);
    // Nothing half-written: neither refused VM exists.
    const ls = await cluster.cli("b", ["ls", "--json"]);
    expect(ls.json<Status[]>().map((v) => v.name)).not.toContain("x1");
    expect(ls.json<Status[]>().map((v) => v.name)).not.toContain("x2");

    const hosts = (await cluster.cli("c", ["host", "ls", "--json"])).json<Array<{ name: string; vms: number }>>();
    expect(hosts.map((h) => [h.name, h.vms])).toEqual([
      ["a", 2],
      ["b", 2],
      ["c", 3],
    ]);
  });

  it("from host a's CLI, start, qmp and stop a VM owned by host c: it runs on c", async () => {
    const start = await cluster.cli("a", ["start", "pinned", "--json"]);
    expect(start.code, start.stderr).toBe(0);
    const started = start.json<Status>();
    expect(started).toMatchObject({ name: "pinned", state: "running", host: "c" });
    // c's agent started it: its QEMU lives in c's runtime directory, not a's.
    const c = cluster.hosts.get("c")!;
    expect(started.qmpSocket!.startsWith(c.runtimeDir)).toBe(true);
    expect(await qemuPidsOf(c.runtimeDir)).toHaveLength(1);
    expect(await qemuPidsOf(cluster.hosts.get("a")!.runtimeDir)).toHaveLength(0);

    const qmp = await cluster.cli("a", ["qmp", "pinned", "query-status", "--json"]);
    expect(qmp.code, qmp.stderr).toBe(0);
    expect(qmp.json<{ status: string; running: boolean }>()).toMatchObject({ status: "running", running: true });

    const status = await cluster.cli("b", ["status", "pinned", "--json"]);
    expect(status.json<Status>()).toMatchObject({ state: "running", host: "c" });

    // A graceful stop routed to c: c's progress (each step and how long it waits) comes back to
    // a's CLI as a local stop's would. A firmware-only guest ignores ACPI: after 2 s, QMP quit.
    const stop = await cluster.cli("a", ["stop", "pinned", "--timeout", "2"]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stderr).toContain(
      "maqet: stopping VM 'pinned': ACPI powerdown sent, waiting up to 2s for the guest to power off\n",
    );
    expect(stop.stderr).toMatch(/maqet: stopping VM 'pinned': the guest did not power off; QMP quit sent/);
    expect(stop.stdout).toMatch(/Stopped VM 'pinned' \(destroyed via quit\)/);
    const stopped = await cluster.cli("a", ["status", "pinned", "--json"]);
    expect(stopped.json<Status>()).toMatchObject({ state: "stopped", host: "c" });
    expect(await qemuPidsOf(c.runtimeDir)).toHaveLength(0);

    // The facts are in the VM's stream, with the placement and the owner epoch.
    const history = await cluster.cli("a", ["history", "pinned", "--json"]);
    const events = history.json<{ events: Array<{ type: string; data: Record<string, unknown> }> }>().events;
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(["vm.defined", "vm.placed", "vm.start-requested", "vm.started", "vm.stopped"]),
    );
    expect(events.find((e) => e.type === "vm.placed")!.data).toEqual({ host: "c", reason: "pinned", epoch: 1 });
  });

  it("drain moves every VM off a host (the running one stopped there and started elsewhere); restore", async () => {
    const onA = (await cluster.cli("b", ["ls", "--json"])).json<Status[]>().filter((v) => v.host === "a");
    expect(onA.length).toBeGreaterThan(0);
    const running = onA[0]!;
    const start = await cluster.cli("b", ["start", running.name]);
    expect(start.code, start.stderr).toBe(0);
    expect(await qemuPidsOf(cluster.hosts.get("a")!.runtimeDir)).toHaveLength(1);

    const drain = await cluster.cli("c", ["host", "drain", "a", "--json"]);
    expect(drain.code, drain.stderr).toBe(0);
    const report = drain.json<{ moved: Array<{ vm: string; to: string; restarted: boolean }>; skipped: unknown[] }>();
    expect(report.skipped).toEqual([]);
    expect(report.moved.map((m) => m.vm).sort()).toEqual(onA.map((v) => v.name).sort());
    for (const m of report.moved) expect(["b", "c"]).toContain(m.to);
    expect(report.moved.find((m) => m.vm === running.name)!.restarted).toBe(true);

    expect(await qemuPidsOf(cluster.hosts.get("a")!.runtimeDir)).toHaveLength(0);
    const moved = (await cluster.cli("a", ["status", running.name, "--json"])).json<Status>();
    expect(moved.state).toBe("running");
    expect(moved.qmpSocket!.startsWith(cluster.hosts.get(moved.host!)!.runtimeDir)).toBe(true);
    const hosts = (await cluster.cli("a", ["host", "ls", "--json"])).json<
      Array<{ name: string; vms: number; draining: boolean }>
    >();
    expect(hosts.find((h) => h.name === "a")).toMatchObject({ vms: 0, draining: true });
    const placed = (await cluster.cli("a", ["history", running.name, "--json"]))
      .json<{ events: Array<{ type: string; data: Record<string, unknown> }> }>()
      .events.filter((e) => e.type === "vm.placed")
      .at(-1)!;
    expect(placed.data).toMatchObject({ reason: "evacuation", from: "a", epoch: 2 });

    // A drained host takes no new VM; restored, it does again.
    const refused = await cluster.cli("a", ["add", "pinned.yaml", "--name", "x3", "--constraint", "none=1"]);
    expect(refused.code).toBe(1);
    const restore = await cluster.cli("a", ["host", "restore", "a", "--json"]);
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.json<{ draining: boolean }>().draining).toBe(false);
    await cluster.cli("a", ["stop", running.name, "--force"]);
  });
});
