#!/usr/bin/env node
// Folds several `npm run bench` result files (.tmp/bench/results-*.json) into one markdown table
// per measure: each run's median, the median of those medians, the same for the baseline, and
// the ratio of the two medians. This is how docs/benchmarks.md gets its figures.
//
//   node bench/compare-runs.mjs .tmp/bench/results-A.json .tmp/bench/results-B.json ...
import { readFileSync } from "node:fs";
import { fmt, median } from "./stats.mjs";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node bench/compare-runs.mjs RESULTS.json [RESULTS.json...]");
  process.exit(2);
}
const runs = files.map((f) => JSON.parse(readFileSync(f, "utf8")));

const measures = new Map(); // name -> { title, rows: Map(key -> { row, values: [], baselines: [] }) }
for (const run of runs) {
  for (const result of run.results) {
    if (!measures.has(result.name)) measures.set(result.name, { title: result.title, rows: new Map() });
    const m = measures.get(result.name);
    for (const r of result.rows ?? []) {
      const key = `${r.what}|${r.baselineLabel ?? ""}`;
      if (!m.rows.has(key)) m.rows.set(key, { row: r, values: [], baselines: [] });
      const entry = m.rows.get(key);
      entry.values.push(r.value.median);
      if (r.baseline) entry.baselines.push(r.baseline.median);
    }
  }
}

const out = [];
const describe = (r) =>
  `${r.date.slice(0, 16)}Z${r.quick ? " (quick)" : ""}, ${Math.round(r.seconds)} s, ` +
  `load ${r.loadavgStart?.[0]?.toFixed(1) ?? "?"} at start`;
out.push(`Runs (finish time, duration, 1-min load average): ${runs.map(describe).join("; ")}`, "");
for (const { title, rows } of measures.values()) {
  out.push(`### ${title}`, "");
  out.push("| measure | unit | maqet, per run | maqet | baseline | baseline, per run | baseline | ratio |");
  out.push("|---|---|---|---:|---|---|---:|---:|");
  for (const { row, values, baselines } of rows.values()) {
    const v = median(values);
    const b = baselines.length ? median(baselines) : undefined;
    out.push(
      `| ${row.what} | ${row.unit} | ${values.map(fmt).join(" / ")} | **${fmt(v)}** | ${row.baselineLabel ?? "-"} | ` +
        `${baselines.map(fmt).join(" / ") || "-"} | ${fmt(b)} | ${b === undefined ? "-" : `${(v / b).toFixed(2)}x`} |`,
    );
  }
  out.push("");
}
console.log(out.join("\n"));
