import { describe, expect, it } from "vitest";
import type { HistoryEntry } from "../../src/api/history-entry.ts";
import { renderResult } from "../../src/cli/render.ts";

const entry = (version: number, type: string, data: Record<string, unknown>): HistoryEntry => ({
  version,
  position: version + 1,
  type,
  schemaVersion: 1,
  at: "2026-11-22T00:00:00.000Z",
  id: `id-${version}`,
  data,
  actor: { user: "root", uid: 0, host: "vm", pid: 42 },
  correlationId: null,
  source: "cli",
});

describe("history text", () => {
  it("summarises the lifecycle facts of issue 4 on one line each", () => {
    const text = renderResult("history", [
      entry(0, "vm.stop-step", { step: "powerdown" }),
      entry(1, "vm.reattached", { pid: 7, status: "running", running: true, previousHolder: { pid: 9, host: "h" } }),
      entry(2, "vm.reset", { guest: true, reason: "guest-reset" }),
      entry(3, "vm.wait-failed", { condition: "serial:login:", timeoutMs: 1500 }),
      entry(4, "vm.resumed", { reason: "wakeup" }),
    ]);
    expect(text).toMatch(/vm\.stop-step\s+step=powerdown/);
    expect(text).toMatch(/vm\.reattached\s+pid=7 status=running after driver pid 9 on h died/);
    expect(text).toMatch(/vm\.reset\s+guest=true reason=guest-reset/);
    expect(text).toMatch(/vm\.wait-failed\s+serial:login: not met in 1\.5s/);
    expect(text).toMatch(/vm\.resumed\s+reason=wakeup/);
  });
});
