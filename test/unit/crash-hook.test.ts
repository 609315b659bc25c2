/**
 * The crash hook: inert unless set, refuses unknown names, and kills only at its own point (the
 * kill itself is exercised by the crash-point tests, which run the CLI with MAQET_CRASH_AT).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { crashHookFor } from "../../src/adapters/crash-hook.ts";
import { isMaqetError } from "../../src/errors/maqet-error.ts";
import { CRASH_POINTS, isCrashPoint, noCrash } from "../../src/util/crash-points.ts";
import { projectRoot } from "../support/build-dist.ts";

describe("crashHookFor", () => {
  it("is the no-op hook when unset or empty", () => {
    expect(crashHookFor(undefined)).toBe(noCrash);
    expect(crashHookFor("")).toBe(noCrash);
  });

  it("refuses a name the registry does not list, naming the known ones", () => {
    let error: unknown;
    try {
      crashHookFor("lock.linkd");
    } catch (e) {
      error = e;
    }
    expect(isMaqetError(error, "INVALID_ARGUMENT")).toBe(true);
    expect((error as Error).message).toContain("Unknown crash point 'lock.linkd'");
    expect((error as Error).message).toContain("lock.linked");
  });

  it("does nothing at the other points", () => {
    const hook = crashHookFor("projection.batch-written");
    for (const point of Object.keys(CRASH_POINTS)) {
      if (point !== "projection.batch-written" && isCrashPoint(point)) hook(point);
    }
    expect(process.exitCode ?? 0).toBe(0);
  });

  it("kills the process with SIGKILL at its point, saying where on stderr", () => {
    const script = `import { crashHookFor } from ${JSON.stringify(join(projectRoot, "dist/src/adapters/crash-hook.js"))};
const hook = crashHookFor("lock.linked");
hook("lock.temp-written");
process.stdout.write("before ");
hook("lock.linked");
process.stdout.write("after");`;
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    expect(run.signal).toBe("SIGKILL");
    expect(run.stdout).toBe("before ");
    expect(run.stderr).toMatch(/^maqet: crash point lock\.linked: killing pid \d+\n$/);
  });
});
