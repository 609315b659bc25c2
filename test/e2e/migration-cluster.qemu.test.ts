/**
 * Live migration between hosts, as a user runs it: two real agents (`maqet agent --host a|b`,
 * each its own runtime directory and socket) on one PostgreSQL database, real QEMU (firmware-only
 * VMs with a qcow2 disk on storage both "hosts" see), the CLI through each host's agent. Then the
 * crash matrix of issue 14: the destination QEMU killed mid-transfer; the source agent killed
 * mid-transfer, at the switchover and after the commit; the destination agent killed after the
 * ownership moved; a migration that cannot converge cancelled by its timeout. In every case
 * exactly one QEMU runs the VM afterwards, and its history says why.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { qemuPidsOf } from "../support/agent-helpers.ts";
import { startMaqet } from "../support/cli-runner.ts";
import { type SimCluster, startCluster } from "../support/cluster-harness.ts";
import { ensureGuest, guestCounts, guestVmYaml } from "../support/guest.ts";
import { waitUntil } from "../support/poll.ts";
import { createTestDatabase } from "../support/postgres-cluster.ts";

interface Status {
  id: string;
  serialLog: string | null;
  state: string;
  host: string | null;
  pid: number | null;
  qmpSocket: string | null;
  detail: string | null;
}
interface HistoryEvent {
  type: string;
  data: Record<string, unknown>;
}

const databaseUrl = inject("databaseUrl");
const MIGRATION_TYPES = [
  "vm.migration-requested",
  "vm.migration-target-prepared",
  "vm.migration-started",
  "vm.migration-switchover",
  "vm.owner-changed",
  "vm.migrated",
];

describe.skipIf(!databaseUrl)(
  "live migration between two agents (real QEMU, one PostgreSQL)",
  { timeout: 600_000 },
  () => {
    let cluster: SimCluster;
    let dropDb: () => Promise<void>;
    let n = 0;

    beforeAll(async () => {
      const db = await createTestDatabase(databaseUrl);
      dropDb = db.drop;
      cluster = await startCluster(["a", "b"], { url: db.url });
    }, 300_000);
    afterAll(async () => {
      await cluster?.stop();
      await dropDb?.();
    }, 120_000);

    const status = async (vm: string, from = "a") => {
      const r = await cluster.cli(from, ["status", vm, "--json"]);
      expect(r.code, r.stderr).toBe(0);
      return r.json<Status>();
    };
    const history = async (vm: string, from = "a") => {
      const r = await cluster.cli(from, ["history", vm, "--json"]);
      expect(r.code, r.stderr).toBe(0);
      return r.json<{ events: HistoryEvent[] }>().events;
    };
    /** The events of the VM's last migration, from its request on. */
    const lastMigration = async (vm: string, from = "a") => {
      const events = await history(vm, from);
      const i = events.findLastIndex((e) => e.type === "vm.migration-requested");
      return events.slice(i);
    };
    /** A running VM on host `host` with a qcow2 disk both hosts see. */
    const runningVm = async (host: string): Promise<{ name: string; pid: number }> => {
      n += 1;
      const name = `mv${n}`;
      await writeFile(
        join(cluster.home, `${name}.yaml`),
        `name: ${name}\nbinary: /usr/bin/qemu-system-x86_64\naccel: tcg\nmemory: 64M\nstorage:\n  - {name: hdd, type: qcow2, file: ${join(cluster.home, `${name}.qcow2`)}, size: 16M}\n`,
      );
      const added = await cluster.cli("a", ["add", `${name}.yaml`, "--host", host, "--json"]);
      expect(added.code, added.stderr).toBe(0);
      const started = await cluster.cli(host, ["start", name]);
      expect(started.code, started.stderr).toBe(0);
      const s = await status(name);
      expect(s).toMatchObject({ state: "running", host });
      return { name, pid: s.pid! };
    };
    /** Exactly one QEMU runs the VM: the one `status` names, on the host it names. */
    const exactlyOneQemu = async (vm: string, host: string) => {
      const s = await waitUntil(
        `VM ${vm} running on ${host}`,
        () => status(vm),
        (v) => v.state === "running" && v.host === host,
        { timeoutMs: 90_000 },
      );
      // Every QEMU of this VM (its runtime directories carry its id), on either host.
      const pids = await waitUntil(
        `one QEMU for ${vm}`,
        () => qemuPidsOf(s.id),
        (p) => p.length === 1,
        { timeoutMs: 30_000 },
      ).catch(() => qemuPidsOf(s.id));
      expect(pids, `QEMU processes of ${vm}`).toEqual([s.pid]);
      expect(s.qmpSocket).toContain(cluster.hosts.get(host)!.runtimeDir);
      return s;
    };
    /** Starts a migration in the background (slow enough to act on mid-transfer). */
    const migrateInBackground = (from: string, args: string[]): { done: Promise<number | null> } => {
      const host = cluster.hosts.get(from)!;
      const run = startMaqet(["migrate", ...args], {
        cwd: cluster.home,
        env: { ...host.env, MAQET_AGENT: host.socket },
      });
      return { done: run.exited.then((e) => e.code) };
    };
    const restart = async (host: string, crashAt?: string) => {
      await cluster.killAgent(host);
      cluster.hosts.get(host)!.extraEnv = crashAt ? { MAQET_CRASH_AT: crashAt } : {};
      await cluster.startAgent(host);
    };

    it("moves a running VM to the other host and back: every phase in its history, status names the new host and pid", async () => {
      const { name, pid } = await runningVm("a");
      const r = await cluster.cli("a", ["migrate", name, "--to", "b", "--json"]);
      expect(r.code, r.stderr).toBe(0);
      const moved = r.json<{
        toHost: string;
        pid: number;
        downtimeMs: number;
        totalMs: number;
        passes: number;
        resumed: boolean;
      }>();
      expect(moved).toMatchObject({ toHost: "b", resumed: true });
      expect(moved.pid).not.toBe(pid);
      expect(moved.downtimeMs).toBeGreaterThan(0);
      expect(moved.totalMs).toBeGreaterThanOrEqual(moved.downtimeMs);
      const s = await exactlyOneQemu(name, "b");
      expect(s.pid).toBe(moved.pid);
      // Both hosts see the same answer; host b drives it now.
      expect((await status(name, "b")).pid).toBe(moved.pid);
      const qmp = await cluster.cli("a", ["qmp", name, "query-status", "--json"]);
      expect(qmp.code, qmp.stderr).toBe(0);
      expect(qmp.stdout).toContain('"running"');
      const events = await lastMigration(name);
      const types = events.map((e) => e.type).filter((t) => t !== "vm.migration-progress");
      expect(types.filter((t) => MIGRATION_TYPES.includes(t) || t === "vm.placed")).toEqual([
        "vm.migration-requested",
        "vm.migration-target-prepared",
        "vm.migration-started",
        "vm.migration-switchover",
        "vm.placed",
        "vm.owner-changed",
        "vm.migrated",
      ]);
      const owner = events.find((e) => e.type === "vm.owner-changed")!.data;
      expect(owner).toMatchObject({ fromHost: "a", toHost: "b" });
      expect(events.find((e) => e.type === "vm.placed")!.data).toMatchObject({
        reason: "migration",
        epoch: owner.epoch,
      });

      // Back again, asked on host b of a VM it owns: a's own QEMU again.
      const back = await cluster.cli("b", ["migrate", name, "--to", "a", "--json"]);
      expect(back.code, back.stderr).toBe(0);
      await exactlyOneQemu(name, "a");
    });

    it("a counting guest moved to host b keeps counting there, without a reset; status names b and the new pid", async () => {
      const guest = await ensureGuest();
      await writeFile(
        join(cluster.home, "counter.yaml"),
        guestVmYaml(guest, { name: "counter", action: "counter", memory: "128M" }),
      );
      expect((await cluster.cli("a", ["add", "counter.yaml", "--host", "a"])).code).toBe(0);
      const started = await cluster.cli("a", [
        "start",
        "counter",
        "--wait-for",
        "serial:MAQET-COUNT",
        "--timeout",
        "180",
      ]);
      expect(started.code, started.stderr).toBe(0);
      const before = await status("counter");
      const r = await cluster.cli("a", ["migrate", "counter", "--to", "b", "--json"]);
      expect(r.code, r.stderr).toBe(0);
      const after = await exactlyOneQemu("counter", "b");
      expect(after.pid).toBe(r.json<{ pid: number }>().pid);
      const sourceFinal = guestCounts(await readFile(before.serialLog!, "utf8")).at(-1)!;
      const went = await waitUntil(
        "the count going on on host b",
        async () => guestCounts(await readFile(after.serialLog!, "utf8").catch(() => "")),
        (c) => c.length >= 5,
        { timeoutMs: 60_000 },
      );
      expect(went[0]).toBe(sourceFinal + 1);
      for (let i = 1; i < went.length; i++) expect(went[i]).toBe(went[i - 1]! + 1);
      expect(after.serialLog).toContain(cluster.hosts.get("b")!.runtimeDir);
      expect(await readFile(after.serialLog!, "utf8")).not.toMatch(/^MAQET-BOOT /m);
      expect((await cluster.cli("b", ["stop", "counter", "--force"])).code).toBe(0);
    });

    it("kill -9 of the destination QEMU mid-transfer: the migration fails, the source runs on", async () => {
      const { name, pid } = await runningVm("a");
      const run = migrateInBackground("a", [name, "--to", "b", "--bandwidth", "0.05"]);
      const prepared = await waitUntil(
        "the destination prepared and the transfer started",
        () => lastMigration(name),
        (events) => events.some((e) => e.type === "vm.migration-started"),
        { timeoutMs: 90_000 },
      );
      const target = prepared.find((e) => e.type === "vm.migration-target-prepared")!.data.pid as number;
      process.kill(target, "SIGKILL");
      expect(await run.done).toBe(1);
      const s = await exactlyOneQemu(name, "a");
      expect(s.pid).toBe(pid);
      const failed = (await lastMigration(name)).at(-1)!;
      expect(failed).toMatchObject({ type: "vm.migration-failed", data: { phase: "transfer" } });
    });

    it("a migration that cannot converge (tiny bandwidth) is cancelled by its --timeout; the source runs on", async () => {
      const { name, pid } = await runningVm("a");
      const r = await cluster.cli("a", ["migrate", name, "--to", "b", "--bandwidth", "0.01", "--timeout", "4"]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain("--timeout");
      const s = await exactlyOneQemu(name, "a");
      expect(s.pid).toBe(pid);
      expect((await lastMigration(name)).at(-1)).toMatchObject({
        type: "vm.migration-cancelled",
        data: { by: "timeout", phase: "transfer" },
      });
    });

    it("kill -9 of the source agent mid-transfer: restarted, it rolls back; the source runs on", async () => {
      const { name, pid } = await runningVm("a");
      const run = migrateInBackground("a", [name, "--to", "b", "--bandwidth", "0.05"]);
      await waitUntil(
        "the transfer started",
        () => lastMigration(name, "b"),
        (events) => events.some((e) => e.type === "vm.migration-started"),
        { timeoutMs: 90_000 },
      );
      await cluster.killAgent("a");
      expect(await run.done).not.toBe(0);
      await cluster.startAgent("a");
      const failed = await waitUntil(
        "the restarted agent settled the migration",
        async () => (await lastMigration(name)).at(-1)!,
        (e) => e.type === "vm.migration-failed",
        { timeoutMs: 90_000 },
      );
      expect(failed.data).toMatchObject({ recovered: true });
      const s = await exactlyOneQemu(name, "a");
      expect(s.pid).toBe(pid);
    });

    it("the source agent killed at the switchover (before the commit): restarted, it rolls back", async () => {
      const { name, pid } = await runningVm("a");
      await restart("a", "migrate.switchover");
      const r = await cluster.cli("a", ["migrate", name, "--to", "b"]);
      expect(r.code).not.toBe(0);
      await restart("a");
      const failed = await waitUntil(
        "the restarted agent settled the migration",
        async () => (await lastMigration(name)).at(-1)!,
        (e) => e.type === "vm.migration-failed",
        { timeoutMs: 90_000 },
      );
      expect(failed.data).toMatchObject({ recovered: true });
      expect((await exactlyOneQemu(name, "a")).pid).toBe(pid);
    });

    it("the source agent killed right after the commit: the destination finishes it once the source host is back", async () => {
      const { name } = await runningVm("a");
      await restart("a", "migrate.committed");
      const r = await cluster.cli("a", ["migrate", name, "--to", "b"]);
      expect(r.code).not.toBe(0);
      await restart("a");
      const done = await waitUntil(
        "the migration finished after the commit",
        async () => (await lastMigration(name, "b")).at(-1)!,
        (e) => e.type === "vm.migrated",
        { timeoutMs: 120_000 },
      );
      expect(done.data).toMatchObject({ recovered: true, toHost: "b" });
      await exactlyOneQemu(name, "b");
    });

    it("kill -9 of the destination agent after the ownership moved: its restart resumes the VM there", async () => {
      const { name } = await runningVm("a");
      await restart("b", "migrate.finishing");
      const b = cluster.hosts.get("b")!;
      const died = new Promise((resolve) => b.process.once("exit", resolve));
      const run = migrateInBackground("a", [name, "--to", "b", "--json"]);
      await Promise.race([
        died,
        run.done.then(() => {
          throw new Error("the migration ended but agent b did not die at migrate.finishing");
        }),
      ]);
      // Back at once (before its fence guard would end its QEMUs): the new incarnation owns the VM.
      await restart("b");
      expect(await run.done).toBe(0);
      const s = await exactlyOneQemu(name, "b");
      await waitUntil(
        "the guest runs on b",
        async () => (await cluster.cli("b", ["qmp", name, "query-status", "--json"])).stdout,
        (out) => out.includes('"running": true') || out.includes('"running":true'),
        { timeoutMs: 90_000 },
      );
      expect(s.detail).toBeNull();
      const events = await lastMigration(name, "b");
      expect(events.filter((e) => e.type === "vm.migrated").length).toBeGreaterThanOrEqual(1);
    });
  },
);
