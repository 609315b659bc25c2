/**
 * Issue 10, acceptance 5, on the library the agent serves: 50 callers acting at once through
 * `maqet.as(caller)` on 10 real firmware-only VMs (PGlite). Every event an operation appends
 * carries that operation's caller and its own correlation id; operations on different VMs run in
 * parallel (shown by the order of events, not by timing); on one VM they run one at a time, in
 * call order, and a caller that has to wait is told so on `progress$` (`vm.wait`).
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { CallerIdentity, HistoryEntry, Maqet, OperationProgress } from "../../src/mod.ts";
import { waitFor } from "../support/cli-runner.ts";
import { firmwareVm } from "../support/firmware-vm.ts";
import { maqetForSuite } from "../support/library-maqet.ts";

const VMS = 10;
const CALLERS = 50;
const vmOf = (i: number) => `cc${i % VMS}`;
const callerOf = (i: number): CallerIdentity => ({
  user: `user${i}`,
  uid: 2000 + i,
  pid: 30_000 + i,
  host: "client-host",
  source: "agent",
});

describe("50 concurrent callers on 10 VMs (real QEMU, PGlite)", { timeout: 300_000 }, () => {
  let dir: string;
  let maqet: Maqet;
  maqetForSuite("maqet-callers-", (s) => ({ dir, maqet } = s), { source: "library" });
  beforeAll(async () => {
    for (let v = 0; v < VMS; v++) {
      await maqet.add(firmwareVm(`cc${v}`, { memory: "32M" }));
      if (v > 0) await maqet.start(`cc${v}`);
    }
  }, 170_000);

  it("every event carries its own caller and correlation id; VMs in parallel, one VM one at a time", async () => {
    const waits: OperationProgress[] = [];
    const progress = maqet.progress$.subscribe((p) => {
      if (p.operation === "vm.wait") waits.push(p);
    });
    const go = join(dir, "go");
    // Caller 0 holds cc0 with a start whose wait condition is met only when the test says so.
    const held = maqet.as(callerOf(0)).start("cc0", { waitFor: `file:${go}`, timeoutMs: 120_000 });
    expect(await waitFor(async () => (await maqet.status("cc0")).state === "running", 20_000)).toBe(true);

    const order: string[] = [];
    // Each other caller: a QMP system_reset (the command, then the RESET QEMU reports), a reset
    // through the facade (vm.reset), then a query under a correlation id of its own choosing.
    const run = async (i: number) => {
      const as = maqet.as(callerOf(i));
      const vm = vmOf(i);
      order.push(`call ${i}`);
      await as.qmp(vm, "system_reset");
      await as.reset(vm);
      await maqet.as({ ...callerOf(i), correlationId: `chosen-${i}` }).qmp(vm, "query-status");
      order.push(`done ${i}`);
    };
    const others = Array.from({ length: CALLERS - 1 }, (_, k) => k + 1);
    const onOthers = others.filter((i) => i % VMS !== 0).map(run);
    const onCc0 = others.filter((i) => i % VMS === 0).map(run);
    void Promise.allSettled(onCc0).then(() => order.push("cc0 callers settled"));
    // Every operation on cc1..cc9 completes while cc0 is still held by caller 0's start.
    await Promise.all(onOthers);
    expect(order.filter((o) => o.startsWith("done"))).toHaveLength(onOthers.length);
    expect(order).not.toContain("cc0 callers settled");
    // The callers queued on cc0 were told what they wait for.
    expect(waits.filter((w) => w.subject === "cc0" && !w.done).map((w) => w.message)).toEqual(
      expect.arrayContaining([expect.stringContaining("start (waiting for file) in progress")]),
    );
    await writeFile(go, "");
    await held;
    await Promise.all(onCc0);
    progress.unsubscribe();

    const histories = new Map<string, HistoryEntry[]>();
    for (let v = 0; v < VMS; v++) histories.set(`cc${v}`, await maqet.history(`cc${v}`));
    const all = [...histories.values()].flat().sort((a, b) => a.position - b.position);
    const byCallers = all.filter((e) => e.source === "agent");
    // What the guest did on its own (the firmware resets itself after a reset) is nobody's
    // operation: never stamped with a caller that happened to hold the VM.
    const byGuest = all.filter((e) => e.type === "vm.reset" && (e.data as { guest: boolean }).guest);
    expect(byGuest.every((e) => e.source === "library" && !e.actor?.user.startsWith("user"))).toBe(true);
    expect(new Set(byGuest.map((e) => e.correlationId)).size).toBe(byGuest.length);
    // 2 + 1 + 1 per caller besides caller 0; caller 0's start: 2.
    expect(byCallers).toHaveLength((CALLERS - 1) * 4 + 2);

    // 1. Each operation's events carry one caller; no correlation id is shared by two callers.
    const groups = new Map<string, HistoryEntry[]>();
    for (const e of byCallers) groups.set(e.correlationId!, [...(groups.get(e.correlationId!) ?? []), e]);
    for (const [id, events] of groups) {
      const users = new Set(events.map((e) => e.actor?.user));
      expect(users.size, `correlation id ${id}`).toBe(1);
    }
    for (let i = 0; i < CALLERS; i++) {
      const mine = byCallers.filter((e) => e.actor?.user === `user${i}`);
      expect(mine.every((e) => e.actor && e.actor.uid === 2000 + i && e.actor.pid === 30_000 + i)).toBe(true);
      expect(mine.every((e) => e.actor?.host === "client-host")).toBe(true);
      const ids = [...new Set(mine.map((e) => e.correlationId))];
      if (i === 0) {
        expect(mine.map((e) => e.type)).toEqual(["vm.start-requested", "vm.started"]);
        expect(ids).toHaveLength(1);
        continue;
      }
      // Three operations, three correlation ids: two fresh, one chosen.
      expect(ids).toHaveLength(3);
      expect(ids).toContain(`chosen-${i}`);
      const viaQmp = mine.filter((e) => e.correlationId === ids[0]);
      expect(viaQmp.map((e) => e.type)).toEqual(["qmp.command-executed", "vm.reset"]);
      expect(mine.filter((e) => e.correlationId === ids[1]).map((e) => e.type)).toEqual(["vm.reset"]);
      expect(mine.filter((e) => e.correlationId === `chosen-${i}`).map((e) => e.type)).toEqual([
        "qmp.command-executed",
      ]);
    }

    // 2. One VM, one operation at a time: in each VM's stream, an operation's events are contiguous.
    for (const [vm, history] of histories) {
      const ids = history.filter((e) => e.source === "agent").map((e) => e.correlationId);
      const blocks = ids.filter((id, k) => k === 0 || id !== ids[k - 1]);
      expect(new Set(blocks).size, `${vm}: ${blocks.join(" ")}`).toBe(blocks.length);
    }

    // 3. FIFO on cc0: the queued callers' first operations ran in the order they were called,
    //    all after caller 0's start.
    const cc0 = histories.get("cc0")!.filter((e) => e.source === "agent");
    const firstOps = [10, 20, 30, 40].map((i) => cc0.findIndex((e) => e.actor?.user === `user${i}`));
    expect(firstOps.every((k, n) => k > 1 && (n === 0 || k > firstOps[n - 1]!))).toBe(true);

    // 4. Different VMs in parallel: all 135 operations on cc1..cc9 started and ended while
    //    caller 0's start still held cc0 (after its vm.started, before any queued cc0 event).
    const vmById = new Map<string, string>();
    for (const [vm, history] of histories) for (const e of history) vmById.set(e.id, vm);
    const started = cc0.find((e) => e.type === "vm.started")!.position;
    const firstQueued = cc0[2]!.position;
    const elsewhere = byCallers.filter((e) => vmById.get(e.id) !== "cc0");
    expect(elsewhere).toHaveLength((CALLERS - 5) * 4);
    expect(elsewhere.every((e) => e.position > started && e.position < firstQueued)).toBe(true);
  });
});
