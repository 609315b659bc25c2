/**
 * The audit trail as a projection: every event of every category becomes one `maqet_audit`
 * row (migrations/0005-audit.ts), chained by hash to the one before, in the store's read order.
 * No feature writes audit lines: a new event type is audited the moment it is appended.
 *
 * Deterministic (the runner's rule): the rows depend only on the events and their order, so a
 * rebuild from position 0 gives identical rows, hashes included.
 *
 * @example
 * ```ts
 * const runner = new ProjectionRunner({ db, store, projections: [auditProjection] });
 * await runner.catchUp(AUDIT_PROJECTION);
 * ```
 */
import { type Kysely, sql } from "kysely";
import { AuditChain, type AuditEntry, GENESIS_HASH } from "../audit-entry.ts";
import type { Projection } from "./projection.ts";

/** The projection's name (its checkpoint row). */
export const AUDIT_PROJECTION = "audit";

/** Raise when `auditFields` or the hash changes what a row holds: every database then rebuilds the trail. */
export const AUDIT_PROJECTION_VERSION = 1;

// biome-ignore lint/suspicious/noExplicitAny: the table is typed by the SQL of migration 0005
type Db = Kysely<any>;

/** Rows per INSERT: 21 parameters each, far below PostgreSQL's 65535. */
const INSERT_CHUNK = 500;

/**
 * The `audit` projection over every category.
 *
 * @example
 * ```ts
 * await runner.rebuild(auditProjection.name);
 * ```
 */
export const auditProjection: Projection = {
  name: AUDIT_PROJECTION,
  version: AUDIT_PROJECTION_VERSION,
  async apply(trx: Db, events) {
    const last = await sql<{ seq: string | number; hash: string }>`
      select seq, hash from maqet_audit order by seq desc limit 1`.execute(trx);
    const vmIds = [...new Set(events.filter((e) => e.streamId.startsWith("vm-")).map((e) => e.streamId.slice(3)))];
    const known = await sql<{ vm_id: string; vm: string }>`
      select distinct on (vm_id) vm_id, vm from maqet_audit
       where operation = 'vm.defined' and vm_id = any(${vmIds}::text[])
       order by vm_id, seq desc`.execute(trx);
    const chain = new AuditChain({
      seq: last.rows[0] ? Number(last.rows[0].seq) : 0,
      hash: last.rows[0]?.hash ?? GENESIS_HASH,
      names: new Map(known.rows.map((r) => [r.vm_id, r.vm])),
    });
    const rows: Record<string, unknown>[] = [];
    for (const event of events) rows.push(toRow(await chain.next(event)));
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      await trx
        .insertInto("maqet_audit")
        .values(rows.slice(i, i + INSERT_CHUNK))
        .execute();
    }
  },
  async reset(trx: Db) {
    await sql`delete from maqet_audit`.execute(trx);
  },
};

function toRow(e: AuditEntry): Record<string, unknown> {
  return {
    seq: e.seq,
    position: e.position,
    event_id: e.eventId,
    at: e.at,
    stream_id: e.streamId,
    vm_id: e.vmId,
    vm: e.vm,
    operation: e.operation,
    parameters: JSON.stringify(e.parameters),
    tier: e.tier,
    rule: e.rule,
    outcome: e.outcome,
    detail: e.detail,
    actor_user: e.user,
    actor_uid: e.uid,
    actor_host: e.host,
    actor_pid: e.pid,
    correlation_id: e.correlationId,
    source: e.source,
    prev_hash: e.prevHash,
    hash: e.hash,
  };
}
