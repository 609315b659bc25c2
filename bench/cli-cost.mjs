// Measure 4: what one CLI call costs. Wall time of `maqet ls` (node dist/src/bin/maqet.js) on an
// existing embedded store holding one VM, against `node -e 0` (Node's own start), importing the
// CLI's modules without running a command, and a bare PGlite open+close of that same data
// directory (what every CLI call pays before it does anything). Also the first-ever command,
// which creates the store. Each row is one process per sample, the kinds taking turns.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { benchDir, cliEntry, runMeasure } from "./harness.mjs";
import { nowMs, row, summarize } from "./stats.mjs";

await runMeasure("cli", "4. CLI per-command cost (embedded PGlite store)", async (ctx) => {
  // Each `ls` is seconds, not milliseconds: sample counts are kept low to stay in the time budget.
  const rounds = ctx.quick ? 3 : 7;
  const firsts = ctx.quick ? 1 : 3;
  const bin = cliEntry(ctx.dist);
  const env = { PATH: process.env.PATH, HOME: join(ctx.root, "home"), LANG: "C" };
  const dataDir = join(ctx.root, "cli-data");
  const cli = (dir, ...words) => [bin, "--data-dir", dir, "--runtime-dir", join(ctx.root, "cli-rt"), ...words];

  const wall = (args, what) => {
    const t0 = nowMs();
    const r = spawnSync(process.execPath, args, { env, encoding: "utf8", timeout: 60_000 });
    const ms = nowMs() - t0;
    if (r.status !== 0) throw new Error(`${what} exited ${r.status} ${r.signal ?? ""}: ${r.stderr}`);
    return ms;
  };

  const first = [];
  for (let i = 0; i < firsts; i++) first.push(wall(cli(join(ctx.root, `cli-first-${i}`), "ls"), "first ls"));
  const nodeFirst = [];
  for (let i = 0; i < firsts; i++) nodeFirst.push(wall(["-e", "0"], "node -e 0"));

  const config = join(ctx.root, "bench.yaml");
  writeFileSync(config, "name: bench\nmemory: 64M\naccel: tcg\nmachine: q35\nargs: [-nodefaults]\n");
  wall(cli(dataDir, "add", config), "add");

  const kinds = {
    node: { args: ["-e", "0"], samples: [] },
    imports: {
      args: ["--input-type=module", "-e", `await import(${JSON.stringify(join(ctx.dist, "src/cli/main.js"))})`],
      samples: [],
    },
    open: { args: [join(benchDir, "pglite-open.mjs"), join(dataDir, "pglite")], samples: [] },
    ls: { args: cli(dataDir, "ls"), samples: [] },
  };
  for (const k of Object.values(kinds)) wall(k.args, "warm-up"); // page cache
  for (let r = 0; r < rounds; r++) {
    const order = Object.entries(kinds);
    if (r % 2 === 1) order.reverse();
    for (const [name, k] of order) k.samples.push(wall(k.args, name));
  }
  const ls = summarize(kinds.ls.samples);
  return {
    rows: [
      row("maqet ls (1 VM defined)", "ms", ls, "node -e 0", summarize(kinds.node.samples)),
      row("maqet ls", "ms", ls, "import CLI modules only", summarize(kinds.imports.samples)),
      row("maqet ls", "ms", ls, "bare PGlite open+close", summarize(kinds.open.samples)),
      row("first-ever command (creates store)", "ms", summarize(first), "node -e 0", summarize(nodeFirst)),
      row("first-ever command", "ms", summarize(first), "maqet ls on existing store", ls),
    ],
    notes: [`${rounds} samples of each kind, interleaved; ${firsts} first-ever commands, each on a fresh data dir`],
  };
});
