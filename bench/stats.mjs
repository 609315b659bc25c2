// Tiny statistics and formatting shared by the benchmarks: medians, percentiles, a table.
// Percentiles interpolate linearly between the two nearest samples (the "R-7" rule numpy uses).

/** Value at quantile `q` (0..1) of `samples`. */
export function quantile(samples, q) {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export const median = (samples) => quantile(samples, 0.5);

/** { n, median, p95, min, max } of a list of numbers. */
export function summarize(samples) {
  return {
    n: samples.length,
    median: median(samples),
    p95: quantile(samples, 0.95),
    min: Math.min(...samples),
    max: Math.max(...samples),
  };
}

/** Milliseconds since an arbitrary origin, sub-microsecond resolution. */
export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/** Runs `fn` and returns how long it took in ms (and its result). */
export async function timed(fn) {
  const t0 = nowMs();
  const result = await fn();
  return { ms: nowMs() - t0, result };
}

/** A number with about 3 significant digits, and thousands grouped: 0.0312, 4.56, 123, 12 345. */
export function fmt(value) {
  if (value === undefined || value === null || Number.isNaN(value)) return "-";
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString("en-US").replaceAll(",", " ");
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

/** "1.23 (4.56)": a median and its p95, or just the median when there is no p95. */
export function fmtStat(stat) {
  if (stat === undefined) return "-";
  return stat.p95 === undefined ? fmt(stat.median) : `${fmt(stat.median)} (${fmt(stat.p95)})`;
}

/**
 * A result row: what was measured with its unit, maqet's figure and the baseline's, each
 * `{ median, p95? , n }`; `ratio` is maqet / baseline in the row's unit.
 */
export function row(what, unit, value, baselineLabel, baseline) {
  const ratio = baseline === undefined ? undefined : value.median / baseline.median;
  return { what, unit, value, baselineLabel, baseline, ratio };
}

/** A plain-text table: header line, rule, rows; columns padded to their widest cell. */
export function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) =>
    cells
      .map((c, i) => String(c).padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** The table of one measure's result rows. */
export function resultTable(rows) {
  return table(
    ["measure", "unit", "maqet median (p95)", "baseline", "baseline median (p95)", "ratio maqet/base"],
    rows.map((r) => [
      r.what,
      r.unit,
      fmtStat(r.value),
      r.baselineLabel ?? "-",
      fmtStat(r.baseline),
      r.ratio === undefined ? "-" : `${r.ratio.toFixed(2)}x`,
    ]),
  );
}
