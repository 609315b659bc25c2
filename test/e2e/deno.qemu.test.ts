/**
 * Deno compatibility, proven rather than claimed: `deno check` on the sources, and the smoke
 * run (embedded store, one real VM started and stopped) on Deno 2.9.6 via npx — never a
 * package.json dependency, since the deno package breaks `npm ci`.
 */
import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../support/build-dist.ts";

function deno(args: string[], timeoutMs: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      "npx",
      ["--yes", "deno@2.9.6", ...args],
      { cwd: projectRoot, timeout: timeoutMs, env: { ...process.env, NO_COLOR: "1" } },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, out: `${stdout}\n${stderr}` });
      },
    );
  });
}

describe("Deno", () => {
  it("deno check passes on the sources", { timeout: 180_000 }, async () => {
    const r = await deno(["check", "src/mod.ts", "src/cli/bin.ts", "test/deno/remote.ts"], 170_000);
    expect(r.out).not.toMatch(/error/i);
    expect(r.code).toBe(0);
  });

  it("a smoke run on Deno starts and stops a real VM on the embedded store", { timeout: 180_000 }, async () => {
    const r = await deno(["run", "-A", "test/deno/smoke.ts"], 170_000);
    expect(r.out).toContain(
      "deno smoke: ok vm.defined,vm.start-requested,vm.started,qmp.command-executed,vm.stop-requested,vm.stop-step,vm.stop-step,vm.stopped",
    );
    expect(r.code).toBe(0);
  });
});
