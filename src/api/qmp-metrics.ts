/**
 * Per-process QMP counters: what this maqet instance sent (or refused), by command, tier and
 * outcome. The store-wide figures (every process, all time) come from the audit projection;
 * these answer "what did this long-running program do since it started".
 *
 * @example
 * ```ts
 * countQmp(ctx, { command: "query-status", tier: "safe", outcome: "ok" });
 * qmpCounters(ctx); // [{ command: "query-status", tier: "safe", outcome: "ok", count: 1 }]
 * ```
 */
import type { MaqetContext } from "./maqet-context.ts";

export type QmpOutcome = "ok" | "error" | "refused";

export interface QmpCount {
  command: string;
  tier: string;
  outcome: QmpOutcome;
  count: number;
}

const counters = new WeakMap<object, Map<string, QmpCount>>();

/** Adds one command to this instance's counters. */
export function countQmp(ctx: MaqetContext, entry: Omit<QmpCount, "count">, n = 1): void {
  let map = counters.get(ctx.instance);
  if (map === undefined) {
    map = new Map();
    counters.set(ctx.instance, map);
  }
  const key = `${entry.command}\0${entry.tier}\0${entry.outcome}`;
  const current = map.get(key);
  if (current) current.count += n;
  else map.set(key, { ...entry, count: n });
}

/** This instance's counters, sorted by command, tier, outcome. */
export function qmpCounters(ctx: MaqetContext): QmpCount[] {
  return [...(counters.get(ctx.instance)?.values() ?? [])]
    .map((c) => ({ ...c }))
    .sort((a, b) => (a.command + a.tier + a.outcome < b.command + b.tier + b.outcome ? -1 : 1));
}
