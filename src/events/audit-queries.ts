/**
 * Reading and verifying the audit trail (`maqet_audit`, built by the audit projection).
 *
 * `verifyAuditChain` walks the rows in chain order and reports the first broken link:
 * - a missing row (a gap in `seq`),
 * - a row whose `prev_hash` is not the previous row's `hash` (deleted or reordered rows),
 * - a row whose fields no longer give its `hash` (an edited row),
 * - a row that differs from the entry its event gives (an edited row whose chain was recomputed,
 *   or an edited event): the trail is rebuilt in memory from the events and compared.
 *
 * @example
 * ```ts
 * const report = await verifyAuditChain(db, store);
 * if (!report.ok) console.error(report.broken);
 * ```
 */
import { type Kysely, sql } from "kysely";
import { AuditChain, type AuditEntry, GENESIS_HASH, hashAuditEntry } from "./audit-entry.ts";
import type { StoredEvent } from "./envelope.ts";
import type { EventStore } from "./event-store.ts";

// biome-ignore lint/suspicious/noExplicitAny: the table is typed by the SQL of migration 0005
type Db = Kysely<any>;

export interface AuditFilter {
  /** A VM name (as recorded at the time) or id. */
  vm?: string;
  /** Entries recorded at or after this time. */
  since?: Date;
  /** Entries recorded at or before this time. */
  until?: Date;
}

/** The first broken link of the chain. */
export interface AuditBreak {
  seq: number;
  position: number | null;
  eventId: string | null;
  /** `missing-entry`, `broken-link`, `modified-entry`, `differs-from-event`, `missing-event`. */
  reason: string;
  /** For `differs-from-event`: the first field that differs. */
  field?: string;
  message: string;
}

export interface AuditVerification {
  ok: boolean;
  /** Rows checked. */
  entries: number;
  /** The last row's hash: write it down elsewhere to detect a rewrite of the whole chain later. */
  head: string | null;
  /** True when each row was also compared with the entry its event gives. */
  checkedAgainstEvents: boolean;
  broken: AuditBreak | null;
}

interface AuditRow {
  seq: string | number;
  position: string | number;
  event_id: string;
  at: Date | string;
  stream_id: string;
  vm_id: string | null;
  vm: string | null;
  operation: string;
  parameters: unknown;
  tier: string | null;
  rule: string | null;
  outcome: string;
  detail: string | null;
  actor_user: string | null;
  actor_uid: number | null;
  actor_host: string | null;
  actor_pid: number | null;
  correlation_id: string | null;
  source: string | null;
  prev_hash: string;
  hash: string;
}

/**
 * Audit entries in chain order, filtered.
 *
 * @example
 * ```ts
 * const entries = await readAuditEntries(db, { vm: "web", since: new Date(Date.now() - 3600_000) });
 * ```
 */
export async function readAuditEntries(db: Db, filter: AuditFilter = {}): Promise<AuditEntry[]> {
  const { rows } = await sql<AuditRow>`
    select * from maqet_audit
     where (${filter.vm ?? null}::text is null or vm = ${filter.vm ?? null} or vm_id = ${filter.vm ?? null})
       and (${filter.since?.toISOString() ?? null}::timestamptz is null or at >= ${filter.since?.toISOString() ?? null}::timestamptz)
       and (${filter.until?.toISOString() ?? null}::timestamptz is null or at <= ${filter.until?.toISOString() ?? null}::timestamptz)
     order by seq`.execute(db);
  return rows.map(fromRow);
}

/**
 * True when an entry passes the filter (the in-memory twin of {@link readAuditEntries}).
 *
 * @example
 * ```ts
 * entries.filter((e) => matchesAuditFilter(e, { vm: "web" }));
 * ```
 */
export function matchesAuditFilter(entry: AuditEntry, filter: AuditFilter): boolean {
  if (filter.vm !== undefined && entry.vm !== filter.vm && entry.vmId !== filter.vm) return false;
  const at = Date.parse(entry.at);
  if (filter.since !== undefined && at < filter.since.getTime()) return false;
  if (filter.until !== undefined && at > filter.until.getTime()) return false;
  return true;
}

/**
 * QMP commands by name, tier and outcome, from the trail (every process, all time).
 *
 * @example
 * ```ts
 * await qmpCountsFromAudit(db); // [{ command: "query-status", tier: "safe", outcome: "ok", count: 12 }]
 * ```
 */
export async function qmpCountsFromAudit(
  db: Db,
): Promise<Array<{ command: string; tier: string; outcome: string; count: number }>> {
  const { rows } = await sql<{ command: string; tier: string; outcome: string; count: string | number }>`
    select detail as command, coalesce(tier, 'safe') as tier, outcome, count(*) as count
      from maqet_audit
     where operation in ('qmp.command-executed', 'qmp.command-rejected')
     group by detail, coalesce(tier, 'safe'), outcome
     order by detail, 2, outcome`.execute(db);
  return rows.map((r) => ({ command: r.command, tier: r.tier, outcome: r.outcome, count: Number(r.count) }));
}

/**
 * The whole trail built in memory from events (for a store without a database to project into).
 *
 * @example
 * ```ts
 * const entries = await buildAuditEntries(await store.readAll());
 * ```
 */
export async function buildAuditEntries(events: readonly StoredEvent[]): Promise<AuditEntry[]> {
  const chain = new AuditChain();
  const out: AuditEntry[] = [];
  for (const event of events) out.push(await chain.next(event));
  return out;
}

const PAGE = 1000;

/**
 * Walks the trail and reports the first broken link. With `store`, each row is also compared
 * with the entry rebuilt from its event.
 *
 * @example
 * ```ts
 * const { ok, broken } = await verifyAuditChain(db, store);
 * ```
 */
export async function verifyAuditChain(db: Db, store?: Pick<EventStore, "readAll">): Promise<AuditVerification> {
  let previous: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH };
  let entries = 0;
  const expected = store ? expectedEntries(store) : undefined;
  try {
    for (;;) {
      const { rows } = await sql<AuditRow>`
        select * from maqet_audit where seq > ${previous.seq} order by seq limit ${PAGE}`.execute(db);
      if (rows.length === 0) break;
      for (const row of rows) {
        const entry = fromRow(row);
        const broken = await checkRow(entry, previous, expected);
        if (broken)
          return {
            ok: false,
            entries,
            head: previous.seq ? previous.hash : null,
            checkedAgainstEvents: !!store,
            broken,
          };
        entries += 1;
        previous = { seq: entry.seq, hash: entry.hash };
      }
    }
  } finally {
    await expected?.return(undefined);
  }
  return { ok: true, entries, head: entries ? previous.hash : null, checkedAgainstEvents: !!store, broken: null };
}

async function checkRow(
  entry: AuditEntry,
  previous: { seq: number; hash: string },
  expected: AsyncGenerator<AuditEntry> | undefined,
): Promise<AuditBreak | null> {
  const at = { seq: entry.seq, position: entry.position, eventId: entry.eventId };
  if (entry.seq !== previous.seq + 1) {
    return {
      ...at,
      reason: "missing-entry",
      message: `Audit entry ${previous.seq + 1} is missing: entry ${entry.seq} follows entry ${previous.seq}.`,
    };
  }
  if (entry.prevHash !== previous.hash) {
    return {
      ...at,
      reason: "broken-link",
      message: `Audit entry ${entry.seq} does not link to entry ${previous.seq}: its prev_hash is not that entry's hash (an entry before it was changed, removed or reordered).`,
    };
  }
  const { hash, ...unsigned } = entry;
  if ((await hashAuditEntry(unsigned)) !== hash) {
    return {
      ...at,
      reason: "modified-entry",
      message: `Audit entry ${entry.seq} (event at position ${entry.position}) was modified: its fields no longer give its hash.`,
    };
  }
  if (expected) {
    const next = await expected.next();
    if (next.done) {
      return {
        ...at,
        reason: "missing-event",
        message: `Audit entry ${entry.seq} has no event behind it: the store holds fewer events than the trail.`,
      };
    }
    const field = (Object.keys(next.value) as Array<keyof AuditEntry>).find(
      (k) => JSON.stringify(next.value[k]) !== JSON.stringify(entry[k]),
    );
    if (field !== undefined) {
      return {
        ...at,
        field,
        reason: "differs-from-event",
        message: `Audit entry ${entry.seq} differs from the entry its event gives (field ${field}): the trail was rewritten, or the event at position ${next.value.position} was changed.`,
      };
    }
  }
  return null;
}

async function* expectedEntries(store: Pick<EventStore, "readAll">): AsyncGenerator<AuditEntry> {
  const chain = new AuditChain();
  let after = 0;
  for (;;) {
    const page = await store.readAll({ after, limit: PAGE });
    if (page.length === 0) return;
    for (const event of page) yield await chain.next(event);
    after = page.at(-1)!.globalPosition;
  }
}

function fromRow(row: AuditRow): AuditEntry {
  const parameters = typeof row.parameters === "string" ? JSON.parse(row.parameters) : row.parameters;
  return {
    seq: Number(row.seq),
    position: Number(row.position),
    eventId: row.event_id,
    at: (row.at instanceof Date ? row.at : new Date(row.at)).toISOString(),
    streamId: row.stream_id,
    vmId: row.vm_id,
    vm: row.vm,
    operation: row.operation,
    parameters: Array.isArray(parameters) ? parameters.map(String) : [],
    tier: row.tier,
    rule: row.rule,
    outcome: row.outcome,
    detail: row.detail,
    user: row.actor_user,
    uid: row.actor_uid === null ? null : Number(row.actor_uid),
    host: row.actor_host,
    pid: row.actor_pid === null ? null : Number(row.actor_pid),
    correlationId: row.correlation_id,
    source: row.source,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
