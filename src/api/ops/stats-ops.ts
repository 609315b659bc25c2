/**
 * Counters: QMP commands by name, tier and outcome, and the binary cache's lookups and hits.
 *
 * Where each comes from (CLI processes live for one command, so per-process figures alone would
 * say little there):
 * - `qmp`: the store, through the audit projection: every process, all time;
 * - `process.qmp`: what this maqet instance sent or refused since it was created;
 * - `process.binaryCache`: this process's binary lookups and cache hits (caches are per process).
 *
 * @example
 * ```ts
 * const s = await maqet.stats();
 * s.qmp.commands.find((c) => c.command === "query-status")?.count;
 * ```
 */
import { binaryCacheStats } from "../../adapters/binary-locator.ts";
import { buildAuditEntries, qmpCountsFromAudit } from "../../events/audit-queries.ts";
import type { MaqetContext } from "../maqet-context.ts";
import { type QmpCount, qmpCounters } from "../qmp-metrics.ts";
import { auditDatabase } from "./audit-ops.ts";

export interface MaqetStats {
  qmp: {
    /** `store`: counted from the audit trail (every process, all time). */
    scope: "store";
    total: number;
    commands: Array<{ command: string; tier: string; outcome: string; count: number }>;
  };
  process: {
    pid: number;
    /** QMP commands this instance sent or refused. */
    qmp: QmpCount[];
    /** Binary lookups that ran in this process, and calls answered from the cache. */
    binaryCache: { lookups: number; hits: number };
  };
}

export interface StatsOps {
  stats(): Promise<MaqetStats>;
}

export function statsOps(ctx: MaqetContext): StatsOps {
  return {
    stats: async () => {
      const rt = await ctx.open();
      let commands: MaqetStats["qmp"]["commands"];
      const db = await auditDatabase(rt);
      if (db) {
        commands = await qmpCountsFromAudit(db);
      } else {
        const counts = new Map<string, { command: string; tier: string; outcome: string; count: number }>();
        for (const e of await buildAuditEntries(await rt.store.readAll())) {
          if (e.operation !== "qmp.command-executed" && e.operation !== "qmp.command-rejected") continue;
          const key = `${e.detail}\0${e.tier}\0${e.outcome}`;
          const c = counts.get(key) ?? {
            command: e.detail ?? "",
            tier: e.tier ?? "safe",
            outcome: e.outcome,
            count: 0,
          };
          c.count += 1;
          counts.set(key, c);
        }
        commands = [...counts.values()].sort((a, b) =>
          `${a.command}\0${a.tier}\0${a.outcome}` < `${b.command}\0${b.tier}\0${b.outcome}` ? -1 : 1,
        );
      }
      return {
        qmp: { scope: "store", total: commands.reduce((n, c) => n + c.count, 0), commands },
        process: { pid: process.pid, qmp: qmpCounters(ctx), binaryCache: binaryCacheStats() },
      };
    },
  };
}
