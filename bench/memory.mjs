// Measure 5: resident memory of a library process holding an open embedded store with one running
// VM, against a bare PGlite instance (file-backed, one query) and an empty Node. Both reopen a data
// directory a first, uncounted run created. Each sample is a fresh process (memory-probe.mjs, with
// --expose-gc, read after GC), the three kinds taking turns. The VM's QEMU is a separate process;
// its RSS is shown for scale.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { benchDir, runMeasure } from "./harness.mjs";
import { row, summarize } from "./stats.mjs";

const MiB = 1024 * 1024;

await runMeasure("memory", "5. Memory (RSS after GC)", async (ctx) => {
  const runs = ctx.quick ? 2 : 3;
  const samples = { node: [], pglite: [], maqet: [] };
  const probe = (mode) => {
    const out = execFileSync(
      process.execPath,
      ["--expose-gc", join(benchDir, "memory-probe.mjs"), mode, join(ctx.root, `mem-${mode}`), ctx.dist],
      { encoding: "utf8", timeout: 120_000, env: { PATH: process.env.PATH, HOME: join(ctx.root, "home") } },
    );
    return JSON.parse(out.trim().split("\n").at(-1));
  };
  // First run of each creates its data directory (and defines the VM); not counted.
  probe("pglite");
  probe("maqet");
  for (let r = 0; r < runs; r++) {
    const order = Object.keys(samples);
    if (r % 2 === 1) order.reverse();
    for (const mode of order) samples[mode].push(probe(mode));
  }
  const mib = (list, key) => summarize(list.filter((s) => s[key] !== undefined).map((s) => s[key] / MiB));
  const withP95 = (s) => ({ ...s, p95: undefined });
  const rss = (mode) => withP95(mib(samples[mode], "rss"));
  const heap = (mode) => withP95(mib(samples[mode], "heapUsed"));
  return {
    rows: [
      row("RSS: library + open store + 1 running VM", "MiB", rss("maqet"), "bare PGlite, 1 query", rss("pglite")),
      row("RSS: library + open store + 1 running VM", "MiB", rss("maqet"), "empty node", rss("node")),
      row("JS heap used: library + store + VM", "MiB", heap("maqet"), "bare PGlite", heap("pglite")),
      row("RSS of the VM's QEMU (TCG, -m 64M)", "MiB", withP95(mib(samples.maqet, "qemuRss"))),
    ],
    notes: [`${runs} fresh processes per kind; medians (no p95 with this few samples)`],
  };
});
