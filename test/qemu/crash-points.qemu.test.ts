/**
 * Every named crash point (src/util/crash-points.ts, docs/crash-points.md) on the embedded store
 * (the lock, store, start and stop points here, the others in crash-points-late.qemu.test.ts; the
 * server's run is crash-points-pg.qemu.test.ts): the CLI is killed there (MAQET_CRASH_AT),
 * then the next command must succeed within its normal time, with no lock stuck, no request left
 * open, no orphan QEMU and no event lost (test/support/crash-point-suite.ts). Also: the docs list
 * exactly the registry, every hook in src/ uses a listed name and every listed name has a hook.
 */
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { VM_EVENT_SCHEMA } from "../../src/events/vm-events.ts";
import { CRASH_POINTS } from "../../src/util/crash-points.ts";
import { projectRoot } from "../support/build-dist.ts";
import { crashPointSuite, PGLITE_PARTS } from "../support/crash-point-suite.ts";
import { createCrashSandbox, OUTCOMES } from "../support/crash-runner.ts";

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

describe("the crash-point registry", () => {
  it("docs/crash-points.md lists exactly the registry's points", async () => {
    const doc = await readFile(join(projectRoot, "docs/crash-points.md"), "utf8");
    const listed = [...doc.matchAll(/^\| `([a-z0-9.-]+)` \|/gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual(Object.keys(CRASH_POINTS).sort());
  });

  it("every hook in src/ uses a listed name, and every listed name has a hook", async () => {
    const used = new Map<string, string[]>();
    for (const file of await sourceFiles(join(projectRoot, "src"))) {
      const text = await readFile(file, "utf8");
      // crash("x"), crash?.("x"), this.#crash("x"), and the lock's { written: "x", linked: "x" } pair.
      for (const m of text.matchAll(/crash\??\.?\(\s*"([^"]+)"|(?:written|linked):\s*"([^"]+)"/g)) {
        const name = (m[1] ?? m[2])!;
        used.set(name, [...(used.get(name) ?? []), relative(projectRoot, file)]);
      }
    }
    const unlisted = [...used.keys()].filter((n) => !Object.hasOwn(CRASH_POINTS, n));
    expect(unlisted, `hooks with names the registry does not list: ${JSON.stringify(unlisted)}`).toEqual([]);
    expect(Object.keys(CRASH_POINTS).filter((n) => !used.has(n))).toEqual([]);
  });

  it("every *-requested event type has its outcomes known to the open-request check", () => {
    const requests = Object.keys(VM_EVENT_SCHEMA).filter((t) => t.endsWith("-requested"));
    expect(requests.sort()).toEqual(Object.keys(OUTCOMES).sort());
  });

  it("the embedded store's two files together run every point exactly once", () => {
    for (const point of Object.keys(CRASH_POINTS)) {
      const parts = PGLITE_PARTS.filter((prefixes) => prefixes.some((p) => point.startsWith(p)));
      expect(parts, `point ${point}`).toHaveLength(1);
    }
  });

  it("an unknown MAQET_CRASH_AT is refused (exit 3), not ignored", async () => {
    const box = await createCrashSandbox("pglite");
    try {
      const r = await box.run(["ls"], { crashAt: "no.such-point" });
      expect(r.code).toBe(3);
      expect(r.stderr).toContain("Unknown crash point 'no.such-point'");
    } finally {
      await box.cleanup();
    }
  }, 300_000);
});

crashPointSuite("pglite", PGLITE_PARTS[0]);
