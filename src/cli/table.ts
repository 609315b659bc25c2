/**
 * Plain-text tables for the terminal: left-aligned columns, two spaces apart, a header row.
 *
 * @example
 * ```ts
 * renderTable(["NAME", "STATE"], [["web", "running"]]);
 * // "NAME  STATE\nweb   running"
 * ```
 */
export function renderTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}
