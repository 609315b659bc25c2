/**
 * Several appends in ONE statement and one transaction: `maqet_append_group` (migrations/
 * 0008-group-append.ts). Each append keeps its own expected-version decision and its own
 * outcome, exactly what {@link appendStatement} would report for it alone (`appended`,
 * `conflict`, `duplicates`), plus `error` when its part raised (the SQLSTATE: a unique
 * violation on an event id written concurrently, a VM name already claimed, a deadlock...):
 * that part was rolled back alone, and the caller runs that append again by itself, which
 * reproduces the error exactly as a lone append would meet it (or succeeds, if the cause went).
 *
 * On a server the appends are sent sorted by stream id (stable: two appends to one stream keep
 * their order), so groups of concurrent writers lock stream rows in one order. On a single
 * session (`sortByStream` false) no other writer can hold a row lock, and they go in arrival
 * order: positions then follow the order the appends were made in, as they did one by one.
 *
 * {@link writeAppends} is what the store calls: a group of one goes through `maqet_append`
 * instead, so a lone append meets its errors exactly as before group commit.
 *
 * @example
 * ```ts
 * const outcomes = await appendGroupStatement(db, [
 *   { streamId: "vm-1", events: [a], expected: 3 },
 *   { streamId: "vm-2", events: [b], expected: "no_stream" },
 * ], false);
 * ```
 */
import { type Kysely, sql } from "kysely";
import {
  type AppendOutcome,
  appendedOutcome,
  appendStatement,
  duplicateRows,
  type OutcomeRow,
  type PreparedEvent,
} from "./append-to-stream.ts";
import type { EventMetadata } from "./envelope.ts";
import type { ExpectedVersion } from "./event-store.ts";
import { type Database, PREPARE_MARK } from "./schema.ts";

/** One append of a group. */
export interface GroupedAppend {
  streamId: string;
  events: readonly PreparedEvent[];
  expected: ExpectedVersion;
}

/** What a group reports for one append: as a lone append, or `error` (rolled back alone). */
export type GroupedOutcome = AppendOutcome | { kind: "error"; sqlState: string };

interface GroupRow extends OutcomeRow {
  idx: number;
  outcome: "appended" | "duplicate";
  error_state: string | null;
}

/** The appends as `maqet_append_group` reads them: stream, events, mode, expected version. */
interface SentAppend {
  s: string;
  e: Array<{ id: string; type: string; schemaVersion: number; data?: unknown; metadata: EventMetadata }>;
  m: string;
  x: number | null;
}

/**
 * Runs `appends` (at least one) in one statement; the outcomes come back in the order given.
 * Throws only when the statement as a whole failed (nothing of the group was written).
 *
 * @example
 * ```ts
 * const [first, second] = await appendGroupStatement(db, appends, true);
 * ```
 */
export async function appendGroupStatement(
  db: Kysely<Database>,
  appends: readonly GroupedAppend[],
  notify: boolean,
  sortByStream = true,
): Promise<GroupedOutcome[]> {
  const order = appends.map((a, i) => ({ a, i }));
  if (sortByStream) {
    order.sort((p, q) => (p.a.streamId < q.a.streamId ? -1 : p.a.streamId > q.a.streamId ? 1 : p.i - q.i));
  }
  const payload = JSON.stringify(
    order.map(({ a }): SentAppend => {
      const mode =
        a.expected === -1
          ? "no_stream"
          : a.expected === "any" || a.expected === "no_stream" || a.expected === "stream_exists"
            ? a.expected
            : "exact";
      return {
        s: a.streamId,
        e: a.events.map((e) => ({
          id: e.id,
          type: e.type,
          schemaVersion: e.schemaVersion,
          data: e.data,
          metadata: e.metadata,
        })),
        m: mode,
        x: typeof a.expected === "number" ? a.expected : null,
      };
    }),
  );
  const { rows } = await sql<GroupRow>`${sql.raw(PREPARE_MARK)}
    select * from maqet_append_group(${payload}::jsonb, ${notify}::boolean)`.execute(db);
  const sent = JSON.parse(payload) as SentAppend[];
  const bySent: GroupRow[][] = order.map(() => []);
  for (const row of rows) bySent[Number(row.idx)]!.push(row);

  const outcomes: GroupedOutcome[] = new Array(appends.length);
  for (let k = 0; k < order.length; k++) {
    const { a, i } = order[k]!;
    const own = bySent[k]!;
    const first = own[0];
    if (first === undefined) throw new Error(`append group: no outcome for '${a.streamId}'`);
    if (first.error_state !== null) outcomes[i] = { kind: "error", sqlState: first.error_state };
    else if ((first.outcome as string) === "conflict") outcomes[i] = { kind: "conflict" };
    else if (first.outcome === "duplicate") {
      // Read after the group committed: the stored rows as any reader now sees them.
      outcomes[i] = { kind: "duplicates", rows: await duplicateRows(db, a.streamId, JSON.stringify(sent[k]!.e)) };
    } else outcomes[i] = appendedOutcome(a.streamId, a.events, sent[k]!.e, own);
  }
  return outcomes;
}

/**
 * One append alone (`maqet_append`, whose errors come through as thrown), several as a group
 * ({@link appendGroupStatement}).
 *
 * @example
 * ```ts
 * const [outcome] = await writeAppends(db, [{ streamId: "vm-1", events: [a], expected: "any" }], true);
 * ```
 */
export async function writeAppends(
  db: Kysely<Database>,
  batch: readonly GroupedAppend[],
  notify: boolean,
  sortByStream = true,
): Promise<GroupedOutcome[]> {
  if (batch.length === 1) {
    const { streamId, events, expected } = batch[0]!;
    return [await appendStatement(db, streamId, events, expected, notify)];
  }
  return appendGroupStatement(db, batch, notify, sortByStream);
}
