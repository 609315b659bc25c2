/**
 * A byte count for people, in binary units. Its own file so the CLI's renderers can use it
 * without importing the disk provisioner (and execa) on the agent-mode path.
 *
 * @example
 * ```ts
 * formatBytes(1610612736); // "1.5 GiB"
 * ```
 */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : Number(value.toFixed(1))} ${units[unit]}`;
}
