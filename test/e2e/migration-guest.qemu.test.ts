/**
 * Live migration as a user sees it from the guest (issue 14, acceptance 1): the test guest counts
 * on its serial console (`maqet.action=counter`, the count kept in guest memory); `maqet migrate
 * g --to <this host>` moves it to a fresh QEMU through the real CLI on the embedded store (the
 * same sequence as between hosts, without a cluster). The count goes on from where it was on the
 * destination's serial log, with no second boot; `status` names the new pid and runtime
 * directory; the history has every phase; exactly one QEMU runs it. Then a second move, and the
 * guest still counts. A kernel guest under TCG: ~10-20 s to boot, once.
 */
import { readFile, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { qemuPidsOf } from "../support/agent-helpers.ts";
import { type CliSandbox, createCliSandbox } from "../support/cli-runner.ts";
import { ensureGuest, GUEST_LINES, guestCounts, guestVmYaml } from "../support/guest.ts";
import { waitUntil } from "../support/poll.ts";

interface Status {
  state: string;
  pid: number | null;
  runtimeDir: string | null;
  serialLog: string | null;
}

const HOST = hostname().split(".")[0] || "localhost";
const BOOTS = new RegExp(GUEST_LINES.boot.source, "gm");

describe("a counting guest migrated to a fresh QEMU (real CLI, embedded store, TCG)", { timeout: 300_000 }, () => {
  let box: CliSandbox;
  const status = async () => {
    const r = await box.run(["status", "g", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    return r.json<Status>();
  };
  const counts = async (log: string) => guestCounts(await readFile(log, "utf8").catch(() => ""));

  beforeAll(async () => {
    const guest = await ensureGuest();
    box = await createCliSandbox();
    await writeFile(join(box.home, "g.yaml"), guestVmYaml(guest, { name: "g", action: "counter", memory: "128M" }));
    expect((await box.run(["add", "g.yaml"])).code).toBe(0);
    const started = await box.run(["start", "g", "--wait-for", "serial:MAQET-COUNT", "--timeout", "180"]);
    expect(started.code, started.stderr).toBe(0);
  }, 300_000);
  afterAll(async () => {
    await box?.run(["stop", "g", "--force"]);
    await box?.cleanup();
  }, 60_000);

  it("keeps counting across two migrations, without a reset, its serial log continuing on the destination", async () => {
    for (const round of [1, 2]) {
      const before = await status();
      const sourceLog = before.serialLog!;
      const last = (
        await waitUntil(
          "the source counting",
          () => counts(sourceLog),
          (c) => c.length > 0,
        )
      ).at(-1)!;

      const r = await box.run(["migrate", "g", "--to", HOST, "--json"]);
      expect(r.code, r.stderr).toBe(0);
      const moved = r.json<{ pid: number; downtimeMs: number; fromHost: string; toHost: string; resumed: boolean }>();
      expect(moved).toMatchObject({ fromHost: HOST, toHost: HOST, resumed: true });
      expect(moved.pid).not.toBe(before.pid);

      const after = await status();
      expect(after).toMatchObject({ state: "running", pid: moved.pid });
      expect(after.runtimeDir).not.toBe(before.runtimeDir);
      expect(after.serialLog).not.toBe(sourceLog);
      // The destination's log picks up the count where the source left it: no reboot, no reset.
      const went = await waitUntil(
        `round ${round}: the count going on on the destination`,
        () => counts(after.serialLog!),
        (c) => c.length >= 5,
        { timeoutMs: 60_000 },
      );
      const sourceFinal = (await counts(sourceLog)).at(-1)!;
      expect(sourceFinal).toBeGreaterThanOrEqual(last);
      expect(went[0]).toBe(sourceFinal + 1);
      for (let i = 1; i < went.length; i++) expect(went[i]).toBe(went[i - 1]! + 1);
      const destinationLog = await readFile(after.serialLog!, "utf8");
      expect(destinationLog.match(BOOTS) ?? []).toEqual([]);
      // One QEMU runs the VM: the one status names.
      expect(await qemuPidsOf(box.home)).toEqual([moved.pid]);
    }

    const history = await box.run(["history", "g", "--json"]);
    const types = history.json<{ events: { type: string }[] }>().events.map((e) => e.type);
    const last = types.slice(types.lastIndexOf("vm.migration-requested"));
    expect(last.filter((t) => t !== "vm.migration-progress")).toEqual([
      "vm.migration-requested",
      "vm.migration-target-prepared",
      "vm.migration-started",
      "vm.migration-switchover",
      "vm.owner-changed",
      "vm.migrated",
    ]);
    expect(types.filter((t) => t === "vm.migrated")).toHaveLength(2);
    expect(types).not.toContain("vm.stopped");
  });
});
