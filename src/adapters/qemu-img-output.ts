/**
 * What qemu-img says, read: which failures are worth retrying (a lock another process holds,
 * EAGAIN, a busy device), its stderr quoted on one line for an error message, the progress lines
 * of `convert -p`, and the JSON of `info` and `check` turned into {@link ImageInfo} and
 * {@link ImageCheck}. Pure: no process is run here (src/adapters/qemu-img-runner.ts runs them).
 *
 * @example
 * ```ts
 * isTransient(`qemu-img: Could not open 'a.qcow2': Failed to get "write" lock`); // true
 * parseInfo("a.qcow2", parseJson(stdout, "info", "a.qcow2"), false).virtualSize;
 * ```
 */
import { type ImageCheck, type ImageInfo, parseImageSnapshot } from "../actors/disk-image-port.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { ToolRunResult } from "./tool-runner.ts";

const LOCK_PATTERNS = [/Failed to get ".*" lock/i, /Is another process using the image/i];
const TRANSIENT_PATTERNS = [
  ...LOCK_PATTERNS,
  /Resource temporarily unavailable/i,
  /\bEAGAIN\b/,
  /Device or resource busy/i,
  /\btry again\b/i,
];

/**
 * True for failures worth retrying: a lock another process holds, EAGAIN, a busy device.
 *
 * @example
 * ```ts
 * isTransient(`qemu-img: Could not open 'a.qcow2': Failed to get "write" lock`); // true
 * ```
 */
export function isTransient(stderr: string): boolean {
  return TRANSIENT_PATTERNS.some((p) => p.test(stderr));
}

/**
 * True when the image is locked by another process (a running VM).
 *
 * @example
 * ```ts
 * isLockError("Is another process using the image [a.qcow2]?"); // true
 * ```
 */
export function isLockError(stderr: string): boolean {
  return LOCK_PATTERNS.some((p) => p.test(stderr));
}

/**
 * qemu-img's own words, on one line.
 *
 * @example
 * ```ts
 * quote({ stderr: "", exitCode: 1, signal: null, stdout: "", aborted: false }); // "exit code 1 and no message"
 * ```
 */
export function quote(result: ToolRunResult): string {
  const text = result.stderr
    .trim()
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .join(" ");
  if (text) return text;
  return result.signal ? `killed by ${result.signal}` : `exit code ${result.exitCode} and no message`;
}

/**
 * Feeds stdout chunks of `qemu-img convert -p` (`    (12.34/100%)\r`) and reports each new,
 * larger percentage once.
 *
 * @example
 * ```ts
 * const feed = progressParser((p) => console.log(p));
 * feed("    (0.00/100%)\r    (50."); feed("00/100%)\r"); // logs 0, then 50
 * ```
 */
export function progressParser(report: (percent: number) => void): (chunk: string) => void {
  let buffer = "";
  let last = -1;
  return (chunk) => {
    buffer += chunk;
    const pattern = /\((\d+(?:\.\d+)?)\/100%\)/g;
    let consumed = 0;
    for (let match = pattern.exec(buffer); match !== null; match = pattern.exec(buffer)) {
      consumed = pattern.lastIndex;
      const percent = Math.min(100, Number(match[1]));
      if (percent > last) {
        last = percent;
        report(percent);
      }
    }
    buffer = buffer.slice(consumed).slice(-64);
  };
}

/**
 * The JSON object qemu-img printed; QEMU_IMG_FAILED when it printed anything else.
 *
 * @example
 * ```ts
 * parseJson('{"format":"qcow2"}', "info", "a.qcow2").format; // "qcow2"
 * ```
 */
export function parseJson(stdout: string, what: string, file: string): Record<string, unknown> {
  try {
    const value = JSON.parse(stdout) as unknown;
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new MaqetError(
    "QEMU_IMG_FAILED",
    `qemu-img ${what} printed something other than a JSON object for ${file} (${JSON.stringify(stdout.slice(0, 80))}). Check that MAQET_QEMU_IMG (or PATH) points at qemu-img.`,
    { details: { file, stdout: stdout.slice(0, 1000) } },
  );
}

/**
 * `qemu-img info --output=json` as {@link ImageInfo}; `inUse` when it was read shared (`-U`).
 *
 * @example
 * ```ts
 * parseInfo("a.qcow2", { format: "qcow2", "virtual-size": 1024 }, false).virtualSize; // 1024
 * ```
 */
export function parseInfo(file: string, raw: Record<string, unknown>, inUse: boolean): ImageInfo {
  const snapshots = Array.isArray(raw.snapshots) ? raw.snapshots.map(parseImageSnapshot) : [];
  const info: ImageInfo = {
    file,
    format: String(raw.format),
    virtualSize: Number(raw["virtual-size"]),
    snapshots,
    inUse,
    raw,
  };
  if (typeof raw["actual-size"] === "number") info.actualSize = raw["actual-size"];
  const backing = raw["full-backing-filename"] ?? raw["backing-filename"];
  if (typeof backing === "string") info.backingFile = backing;
  if (typeof raw["backing-filename-format"] === "string") info.backingFormat = raw["backing-filename-format"];
  if (typeof raw["dirty-flag"] === "boolean") info.dirty = raw["dirty-flag"];
  return info;
}

/**
 * `qemu-img check --output=json` as {@link ImageCheck}; the exit code tells the status (2 corrupt, 3 leaks).
 *
 * @example
 * ```ts
 * parseCheck("a.qcow2", { leaks: 4 }, 3).status; // "leaks"
 * ```
 */
export function parseCheck(file: string, raw: Record<string, unknown>, exitCode: number): ImageCheck {
  const num = (key: string) => (typeof raw[key] === "number" ? (raw[key] as number) : 0);
  const check: ImageCheck = {
    file,
    status: exitCode === 2 ? "corrupt" : exitCode === 3 ? "leaks" : "clean",
    checkErrors: num("check-errors"),
    corruptions: num("corruptions"),
    leaks: num("leaks"),
    raw,
  };
  if (typeof raw.format === "string") check.format = raw.format;
  if (typeof raw["image-end-offset"] === "number") check.imageEndOffset = raw["image-end-offset"];
  return check;
}
