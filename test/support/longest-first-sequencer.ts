/**
 * The order vitest starts test files in: longest first, across all three tiers (vitest.config.ts
 * `sequence.sequencer`). With two workers, a long file that starts last runs alone while the
 * other worker idles; longest-first keeps both busy until the short unit files fill the end.
 *
 * vitest's own order runs the projects one after another (int, qemu, unit) and, with no results
 * cache (a fresh clone, CI), the larger files first: test/qemu/crash-points.qemu.test.ts, one of
 * the longest files and one of the smallest, started near the end.
 *
 * A file's expected time is, in this order: its duration in vitest's results cache (the last run
 * on this machine), the figure in EXPECTED_S, or a tier default. The figures only order the
 * files; a wrong one costs balance, never a result.
 */
import { relative } from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * Seconds each long file took in the merged suite of session 6 (commit 8878f2e, 2 workers, load
 * ~5; the sum of its tests' times). Files not listed take the tier default. Session 7 cut a CLI
 * call's CPU by about 2.5x (docs/testing.md, "The cost of one CLI call"): crash-points,
 * crash-points-late, cli and snapshot-recovery are those figures times the wall-time ratio
 * measured for each file, old and new build side by side at load 9-20 (0.57, 0.68, 0.84, 0.60).
 */
export const EXPECTED_S: Record<string, number> = {
  "test/qemu/crash-points.qemu.test.ts": 220,
  "test/qemu/crash-points-late.qemu.test.ts": 180,
  "test/qemu/lifecycle-guest.qemu.test.ts": 124,
  "test/qemu/crash-points-pg.qemu.test.ts": 119,
  "test/e2e/package.qemu.test.ts": 105,
  "test/e2e/cli.qemu.test.ts": 100,
  "test/e2e/maqet-corpus.qemu.test.ts": 93,
  "test/e2e/qmp-audit-cli.qemu.test.ts": 89,
  "test/e2e/cli-terminal.qemu.test.ts": 80,
  "test/qemu/snapshot-recovery.qemu.test.ts": 65,
  "test/int/vm-list-projection.int.test.ts": 62,
  "test/e2e/migration-cluster.qemu.test.ts": 60,
  "test/e2e/guest-network.qemu.test.ts": 59,
  "test/qemu/disk-safety.qemu.test.ts": 57,
  "test/e2e/console-interactive.qemu.test.ts": 51,
  // 30 overlapping rounds (session 8): 47-86 s alone at load 4-13, niced, one worker.
  "test/e2e/cluster-chaos.qemu.test.ts": 80,
  "test/e2e/cluster.qemu.test.ts": 43,
  "test/qemu/doctor.qemu.test.ts": 42,
  "test/e2e/cluster-failure.qemu.test.ts": 39,
  "test/e2e/migration-guest.qemu.test.ts": 36,
  "test/int/cli-events.int.test.ts": 35,
  "test/e2e/maqet-apply.qemu.test.ts": 33,
  "test/qemu/supervision.qemu.test.ts": 32,
  "test/e2e/web-console.qemu.test.ts": 32,
  "test/e2e/console.qemu.test.ts": 32,
  "test/e2e/cli-store.qemu.test.ts": 32,
  "test/qemu/guest.qemu.test.ts": 31,
  "test/qemu/guest-counter.qemu.test.ts": 29,
  "test/e2e/cli-lease.qemu.test.ts": 22,
  "test/e2e/agent.qemu.test.ts": 22,
  "test/qemu/crash-only.qemu.test.ts": 21,
  "test/e2e/deno.qemu.test.ts": 18,
  "test/e2e/cli-disk-paths.qemu.test.ts": 18,
  "test/int/group-commit.int.test.ts": 16,
  "test/e2e/cli-store-down.qemu.test.ts": 15,
  "test/e2e/cli-output.qemu.test.ts": 15,
  "test/int/subscription-handover.int.test.ts": 15,
  "test/int/event-store.int.test.ts": 15,
  "test/int/event-store-conformance.int.test.ts": 15,
  "test/int/event-json-shapes.int.test.ts": 15,
  "test/int/projection-runner.int.test.ts": 15,
  "test/int/owner-epoch.int.test.ts": 15,
};

/** A file neither in the cache nor in EXPECTED_S: by its tier. */
const TIER_DEFAULT_S: Record<string, number> = { qemu: 15, int: 10, unit: 1 };

export default class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const expectedMs = (spec: TestSpecification): number => {
      const path = relative(root, spec.moduleId);
      const cached = this.ctx.cache.getFileTestResults(`${spec.project.name}:${path}`);
      if (cached && cached.duration > 0) return cached.duration;
      return 1000 * (EXPECTED_S[path] ?? TIER_DEFAULT_S[spec.project.name] ?? 10);
    };
    const cost = new Map(files.map((spec) => [spec, expectedMs(spec)]));
    return [...files].sort((a, b) => cost.get(b)! - cost.get(a)!);
  }
}
