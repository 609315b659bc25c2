/**
 * The test guest's live-migration actions, booted by maqet (library, embedded store, real QEMU
 * under TCG): `counter` prints a count that only goes up, once per boot; `dirty` does the same
 * while it rewrites memory, which QEMU's own dirty-rate measurement sees and the counter guest's
 * does not. Two guests booted side by side (~6-15 s); built once per machine (test/support/guest.ts).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMaqet, type Maqet } from "../../src/mod.ts";
import { ensureGuest, GUEST_LINES, type Guest, guestCounts, guestVmConfig } from "../support/guest.ts";
import { waitUntil } from "../support/poll.ts";

const BOOT_TIMEOUT_MS = 90_000;
const BOOT_LINE = new RegExp(GUEST_LINES.boot.source, "gm");
const DIRTY_LINE = new RegExp(GUEST_LINES.dirty.source, "gm");

interface DirtyRate {
  status: string;
  "dirty-rate"?: number;
}

describe("the test guest's counter and dirty actions (real QEMU, TCG)", () => {
  let dir: string;
  let maqet: Maqet;
  let guest: Guest;
  const serial: Record<string, string> = {};
  const log = (vm: string) => readFile(serial[vm]!, "utf8").catch(() => "");

  beforeAll(async () => {
    guest = await ensureGuest();
    dir = await mkdtemp(join(tmpdir(), "maqet-guest-counter-"));
    maqet = createMaqet({ dataDir: join(dir, "data"), runtimeDir: join(dir, "run"), env: { PATH: process.env.PATH } });
    await maqet.add(guestVmConfig(guest, { name: "counter", action: "counter" }));
    await maqet.add(guestVmConfig(guest, { name: "dirty", action: "dirty", dirtyMiB: 48 }));
    for (const vm of ["counter", "dirty"]) {
      const started = await maqet.start(vm);
      serial[vm] = join(started.runtimeDir!, "serial.log");
    }
  }, 10 * 60_000);
  afterAll(async () => {
    for (const vm of ["counter", "dirty"]) await maqet?.stop(vm, { force: true }).catch(() => undefined);
    await maqet?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(
    "counter: counts 1, 2, 3, … about every 100 ms of guest time, after a single boot",
    async () => {
      const text = await waitUntil(
        "30 counts on the counter guest's serial log",
        () => log("counter"),
        (t) => guestCounts(t).length >= 30,
        {
          timeoutMs: BOOT_TIMEOUT_MS,
          everyMs: 200,
        },
      );
      const counts = guestCounts(text);
      expect(counts.slice(0, 30)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(text.match(BOOT_LINE)).toHaveLength(1);
      expect(GUEST_LINES.boot.exec(text)?.[2]).toBe("counter");
      // The uptime on each line only grows, by at least the 100 ms sleep per count.
      const uptimes = [...text.matchAll(new RegExp(GUEST_LINES.count.source, "gm"))].map((m) => Number(m[2]));
      for (let i = 1; i < uptimes.length; i++) expect(uptimes[i]! - uptimes[i - 1]!).toBeGreaterThanOrEqual(0.09);
      // And it goes on: later reads see higher counts, never a restart at 1.
      const later = guestCounts(
        await waitUntil(
          "the count to pass 40",
          () => log("counter"),
          (t) => (guestCounts(t).at(-1) ?? 0) > 40,
          {
            timeoutMs: 60_000,
            everyMs: 200,
          },
        ),
      );
      expect(later.every((n, i) => n === i + 1)).toBe(true);
      expect((await log("counter")).match(BOOT_LINE)).toHaveLength(1);
    },
    3 * 60_000,
  );

  it(
    "dirty: counts too, rewrites its memory pass after pass, and QEMU measures it dirtying pages",
    async () => {
      const text = await waitUntil(
        "the dirty guest's second pass and 10 counts",
        () => log("dirty"),
        (t) =>
          t.match(DIRTY_LINE)?.length !== undefined && t.match(DIRTY_LINE)!.length >= 2 && guestCounts(t).length >= 10,
        { timeoutMs: BOOT_TIMEOUT_MS, everyMs: 200 },
      );
      expect(GUEST_LINES.dirty.exec(text)?.slice(1)).toEqual(["1", "48"]);
      expect(guestCounts(text).slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
      expect(text.match(BOOT_LINE)).toHaveLength(1);
      // QEMU's page-sampling dirty rate, both guests over the same window: it hashes sampled
      // pages at both ends of the window, so what it sees is MiB changed across the window. The
      // window must hold a whole pass of the dirty guest (48 of its 256 MiB rewritten with bytes
      // no recent pass wrote) — it grows from 2 s until one does, however slow the machine.
      const passCount = async () => (await log("dirty")).match(DIRTY_LINE)?.length ?? 0;
      const tried: string[] = [];
      let window: { seconds: number; counterMiB: number; dirtyMiB: number } | undefined;
      for (const seconds of [2, 4, 8, 16, 32]) {
        const before = await passCount();
        const rates: Record<string, number> = {};
        for (const vm of ["counter", "dirty"]) {
          await maqet.qmp(vm, "calc-dirty-rate", { "calc-time": seconds, "sample-pages": 2048 });
        }
        for (const vm of ["counter", "dirty"]) {
          const measured = await waitUntil(
            `QEMU's dirty rate of ${vm}`,
            () => maqet.qmp<DirtyRate>(vm, "query-dirty-rate"),
            (r) => r.status === "measured",
            { timeoutMs: seconds * 1_000 + 15_000, everyMs: 200 },
          );
          rates[vm] = measured["dirty-rate"] ?? Number.NaN;
        }
        const passesSeen = (await passCount()) - before;
        tried.push(`${seconds} s: ${passesSeen} pass starts, counter ${rates.counter} MB/s, dirty ${rates.dirty} MB/s`);
        // A pass that began after the window opened and ended (the next began) by the time it closed.
        if (passesSeen >= 2) {
          window = { seconds, counterMiB: rates.counter! * seconds, dirtyMiB: rates.dirty! * seconds };
          break;
        }
      }
      console.log(`dirty rate (QEMU page-sampling): ${tried.join("; ")}`);
      expect(window, `no window up to 32 s held a whole pass of the dirty guest: ${tried.join("; ")}`).toBeDefined();
      // Sampling 512 of the 256 MiB: about 96 sampled pages in the 48 MiB rewritten.
      expect(window!.dirtyMiB).toBeGreaterThanOrEqual(24);
      expect(window!.dirtyMiB).toBeGreaterThanOrEqual(window!.counterMiB + 16);
      const passes = [...(await log("dirty")).matchAll(DIRTY_LINE)].map((m) => Number(m[1]));
      expect(passes).toEqual(Array.from({ length: passes.length }, (_, i) => i + 1));
    },
    3 * 60_000,
  );
});
