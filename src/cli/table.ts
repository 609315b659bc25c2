/**
 * Plain-text tables for the terminal: left-aligned columns, two spaces apart, a header row.
 *
 * @example
 * ```ts
 * renderTable(["NAME", "STATE"], [["web", "running"]]);
 * // "NAME  STATE\nweb   running"
 * ```
 */
export function renderTable(
  headers: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  /** Colours a body cell after it is padded (escape codes take no room in the alignment). */
  paintCell?: (column: number, cell: string, padded: string) => string,
): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[], paint = false) =>
    cells
      .map((c, i) => {
        const padded = i === cells.length - 1 ? c : c.padEnd(widths[i]!);
        return paint && paintCell ? paintCell(i, c, padded) : padded;
      })
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map((r) => line(r, true))].join("\n");
}
