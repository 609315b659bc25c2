/**
 * Times on the command line (`history --at`, `audit --since/--until`): an ISO 8601 time
 * (`2026-11-22T10:15:00Z`, or a date `2026-11-22` = its midnight UTC), or a duration ago
 * (`90s`, `15m`, `2h`, `7d`).
 *
 * @example
 * ```ts
 * parseTimeArg("2h", "--since", new Date("2026-11-22T12:00:00Z")); // 2026-11-22T10:00:00Z
 * ```
 */
import { MaqetError } from "../../errors/maqet-error.ts";

const UNITS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseTimeArg(value: unknown, flag: string, now: Date = new Date()): Date | undefined {
  if (value === undefined) return undefined;
  const text = String(value).trim();
  const ago = /^(\d+)([smhd])$/.exec(text);
  if (ago) return new Date(now.getTime() - Number(ago[1]) * UNITS[ago[2]!]!);
  // Date.parse is lenient; accept only what starts like an ISO date.
  const ms = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid ${flag} '${text}': use an ISO 8601 time (2026-11-22T10:15:00Z, 2026-11-22) or a duration ago (90s, 15m, 2h, 7d).`,
    );
  }
  return new Date(ms);
}
