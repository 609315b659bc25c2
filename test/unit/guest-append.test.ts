/**
 * The test guest's kernel command line and serial-log parsing (test/support/guest.ts): the words
 * the orders become, and the counter lines read back. Pure functions, no QEMU.
 */
import { describe, expect, it } from "vitest";
import { GUEST_LINES, guestAppend, guestCounts } from "../support/guest.ts";

describe("guestAppend", () => {
  it("writes the counter and dirty actions and the dirty size as maqet.* words", () => {
    expect(guestAppend({ action: "counter" })).toBe("console=ttyS0 quiet maqet.action=counter");
    expect(guestAppend({ action: "dirty", dirtyMiB: 32 })).toBe(
      "console=ttyS0 quiet maqet.action=dirty maqet.dirty=32",
    );
  });

  it.each([0, -1, 1.5, Number.NaN])("refuses dirtyMiB %s", (dirtyMiB) => {
    expect(() => guestAppend({ action: "dirty", dirtyMiB })).toThrow(/dirtyMiB must be a whole number >= 1/);
  });
});

describe("guestCounts and the counter lines", () => {
  it("reads every MAQET-COUNT in order, with \\r\\n endings, skipping other lines", () => {
    const log =
      "MAQET-BOOT uptime=5.10 action=dirty\r\nMAQET-COUNT 1 uptime=5.30\r\nMAQET-DIRTY pass=1 mib=64\r\n" +
      "MAQET-COUNT 2 uptime=5.41\r\nMAQET-COUNTX 9 uptime=1\r\nMAQET-COUNT 3 uptime=5.52\r\n";
    expect(guestCounts(log)).toEqual([1, 2, 3]);
    expect(GUEST_LINES.count.exec(log)?.slice(1)).toEqual(["1", "5.30"]);
    expect(GUEST_LINES.dirty.exec(log)?.slice(1)).toEqual(["1", "64"]);
    expect(guestCounts("MAQET-BOOT uptime=5.10 action=counter\r\n")).toEqual([]);
  });
});
