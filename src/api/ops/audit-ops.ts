/**
 * The audit trail: who did what to which VM, when, with which outcome — a projection of every
 * event (src/events/projections/audit-projection.ts), caught up before each read, so it is never
 * behind the store. With a custom `store` (no database to project into) the same entries are
 * built in memory from the events.
 *
 * @example
 * ```ts
 * const entries = await maqet.audit({ vm: "web", since: new Date(Date.now() - 86_400_000) });
 * const report = await maqet.auditVerify();
 * if (!report.ok) console.error(report.broken?.message);
 * ```
 */

import type { Kysely } from "kysely";
import type { AuditEntry } from "../../events/audit-entry.ts";
import {
  type AuditFilter,
  type AuditVerification,
  buildAuditEntries,
  matchesAuditFilter,
  readAuditEntries,
  verifyAuditChain,
} from "../../events/audit-queries.ts";
import { AUDIT_PROJECTION } from "../../events/projections/audit-projection.ts";
import type { Database } from "../../events/schema.ts";
import type { MaqetContext } from "../maqet-context.ts";
import type { Runtime } from "../runtime.ts";

export type { AuditEntry } from "../../events/audit-entry.ts";
export type { AuditBreak, AuditFilter, AuditVerification } from "../../events/audit-queries.ts";

export interface AuditOps {
  /** Audit entries in order (oldest first), filtered by VM (name or id) and time. */
  audit(filter?: AuditFilter): Promise<AuditEntry[]>;
  /**
   * Walks the hash chain and compares each entry with its event; `ok: false` names the first
   * broken link. Never throws for a broken chain (the CLI turns it into exit 1).
   */
  auditVerify(): Promise<AuditVerification>;
}

export function auditOps(ctx: MaqetContext): AuditOps {
  return {
    audit: async (filter = {}) => {
      const rt = await ctx.open();
      const db = await auditDatabase(rt);
      if (db) return readAuditEntries(db, filter);
      return (await buildAuditEntries(await rt.store.readAll())).filter((e) => matchesAuditFilter(e, filter));
    },
    auditVerify: async () => {
      const rt = await ctx.open();
      const db = await auditDatabase(rt);
      if (db) return verifyAuditChain(db, rt.store);
      // Built from the events this instant: nothing stored that could have been changed.
      const entries = await buildAuditEntries(await rt.store.readAll());
      return {
        ok: true,
        entries: entries.length,
        head: entries.at(-1)?.hash ?? null,
        checkedAgainstEvents: true,
        broken: null,
      };
    },
  };
}

/** The database with the audit projection caught up, or undefined when there is none. */
export async function auditDatabase(rt: Runtime): Promise<Kysely<Database> | undefined> {
  const { db, projections } = rt;
  if (db === undefined || projections === undefined || !projections.names.includes(AUDIT_PROJECTION)) {
    return undefined;
  }
  await projections.catchUp(AUDIT_PROJECTION);
  return db;
}
