import { describe, expect, it } from "vitest";
import { pausedDetailOf } from "../../src/actors/paused-detail.ts";
import { createTranslator } from "../../src/actors/watch-qemu.ts";

const ev = (event: string, data?: Record<string, unknown>) => ({
  event,
  data,
  timestamp: { seconds: 0, microseconds: 0 },
});

describe("QMP event translation", () => {
  it("a bare STOP is a user pause; RESUME resumes", () => {
    const t = createTranslator();
    expect(t(ev("STOP"))).toEqual({ type: "QMP.STOP", status: "paused" });
    expect(t(ev("RESUME"))).toEqual({ type: "QMP.RESUME" });
    expect(pausedDetailOf("paused")).toBe("user");
  });

  it.each([
    ["BLOCK_IO_ERROR", { action: "stop", operation: "write" }, "io-error", "ioerror"],
    ["WATCHDOG", { action: "pause" }, "watchdog", "watchdog"],
    ["GUEST_PANICKED", { action: "pause" }, "guest-panicked", "guest-panic"],
  ])("%s then STOP is a %s pause", (cause, data, status, detail) => {
    const t = createTranslator();
    // GUEST_PANICKED is a fact of its own (vm.guest-panicked); the others only colour the STOP.
    const first = t(ev(cause, data));
    if (cause === "GUEST_PANICKED") expect(first).toEqual({ type: "QMP.GUEST_PANICKED", action: "pause" });
    else expect(first).toBeUndefined();
    expect(t(ev("STOP"))).toEqual({ type: "QMP.STOP", status });
    expect(pausedDetailOf(status)).toBe(detail);
    // The cause is used once.
    expect(t(ev("STOP"))).toEqual({ type: "QMP.STOP", status: "paused" });
  });

  it("a non-pausing action does not colour the next STOP", () => {
    const t = createTranslator();
    t(ev("BLOCK_IO_ERROR", { action: "report" }));
    expect(t(ev("STOP"))).toEqual({ type: "QMP.STOP", status: "paused" });
  });

  it("SHUTDOWN and RESET keep QEMU's guest flag and reason", () => {
    const t = createTranslator();
    expect(t(ev("SHUTDOWN", { guest: true, reason: "guest-shutdown" }))).toEqual({
      type: "QMP.SHUTDOWN",
      guest: true,
      reason: "guest-shutdown",
    });
    expect(t(ev("RESET", { guest: false, reason: "host-qmp-system-reset" }))).toEqual({
      type: "QMP.RESET",
      guest: false,
      reason: "host-qmp-system-reset",
    });
    expect(t(ev("POWERDOWN"))).toBeUndefined();
  });
});
