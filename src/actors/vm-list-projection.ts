/**
 * The VM list as a projection: one `maqet_vms` row per VM stream, built by folding each
 * stream's events with `applyVmEvent` (the same fold the VM actor rehydrates with: one code
 * path), and read by `ls`, `status` and every name lookup after an inline catch-up, so reads
 * cost O(VMs) rows, never a replay of the streams.
 *
 * A row stores the whole folded view (`view`, Dates tagged so they come back as Dates; the
 * config in its own column) plus the fields people and SQL query (name, status, pid...).
 *
 * @example
 * ```ts
 * const runner = new ProjectionRunner({ db, store, projections: [vmListProjection] });
 * const directory = projectedVmDirectory(runner, db);
 * console.log((await directory.list()).map((v) => `${v.name} ${v.status}`));
 * ```
 */
import { type Kysely, sql } from "kysely";
import { decodeStoredConfig, encodeStoredConfig } from "../config/stored-config.ts";
import type { StoredEvent } from "../events/envelope.ts";
import type { EventStore } from "../events/event-store.ts";
import type { Projection, ProjectionRebuilder } from "../events/projections/projection.ts";
import type { ProjectionRunner } from "../events/projections/projection-runner.ts";
import { vmStreamId } from "../events/vm-events.ts";
import type { VmDirectory } from "./vm-directory.ts";
import { applyVmEvent, foldVmEvents, statusDetail, type VmView } from "./vm-view.ts";

/** The projection's name (its checkpoint row). */
export const VM_LIST_PROJECTION = "vms";

/**
 * Raise when `applyVmEvent` (or the row layout) changes what a row holds: every database then
 * rebuilds `maqet_vms` from position 0 on its next catch-up.
 */
export const VM_LIST_PROJECTION_VERSION = 1;

interface VmRow {
  stream_id: string;
  config: unknown;
  view: unknown;
  first_position: string | number;
}

// biome-ignore lint/suspicious/noExplicitAny: the table is typed by the SQL below
type Db = Kysely<any>;

/** A row as the fold continues from it. */
interface Folded {
  view: VmView;
  firstPosition: number;
}

/** In the runner's state: true when every row is there (the table was emptied by this runner). */
const COMPLETE = Symbol("complete");
/** Rows kept between batches, at most (about 1 KB each); past it the cache starts over. */
const CACHE_LIMIT = 50_000;
/**
 * VMs a rebuild folds in memory, at most (about 1.6 KB of heap each: 250 000 is ~400 MB); past it
 * the rows folded so far are written and the rest of the history is applied batch by batch.
 */
const REBUILD_LIMIT = 250_000;
/** Rows per INSERT statement when a rebuild writes its rows (about 1 KB each). */
const WRITE_CHUNK = 5000;

/** A VM as a rebuild folds it: its row's fields, updated in place. */
interface Rebuilt extends Folded {
  lastPosition: number;
}

/**
 * The `vms` projection over the `vm` category.
 *
 * @example
 * ```ts
 * const runner = new ProjectionRunner({ db, store, projections: [vmListProjection] });
 * await runner.rebuild(vmListProjection.name);
 * ```
 */
export const vmListProjection: Projection = {
  name: VM_LIST_PROJECTION,
  version: VM_LIST_PROJECTION_VERSION,
  category: "vm",
  async apply(trx, events, { state }) {
    const byStream = new Map<string, StoredEvent[]>();
    for (const event of events) {
      const list = byStream.get(event.streamId);
      if (list) list.push(event);
      else byStream.set(event.streamId, [event]);
    }
    // The rows this runner wrote in its previous batches are in `state`; read only the others.
    if (state.size + byStream.size > CACHE_LIMIT) state.clear();
    const missing = state.get(COMPLETE) === true ? [] : [...byStream.keys()].filter((id) => !state.has(id));
    if (missing.length > 0) {
      const { rows } = await sql<VmRow>`
        select stream_id, config, view, first_position from maqet_vms
         where stream_id = any(${missing}::text[])`.execute(trx);
      for (const row of rows) {
        state.set(row.stream_id, { view: decodeView(row), firstPosition: Number(row.first_position) } satisfies Folded);
      }
    }
    const changed: unknown[][] = [];
    for (const [streamId, streamEvents] of byStream) {
      const before = state.get(streamId) as Folded | undefined;
      let view = before?.view;
      let firstPosition = before?.firstPosition;
      for (const event of streamEvents) {
        view = applyVmEvent(view, event);
        if (view !== undefined) firstPosition ??= event.globalPosition;
      }
      if (view === undefined || firstPosition === undefined) continue; // no vm.defined yet: nothing to list
      state.set(streamId, { view, firstPosition } satisfies Folded);
      changed.push(toRow(view, firstPosition, streamEvents.at(-1)!.globalPosition));
    }
    if (changed.length > 0) await upsert(trx, JSON.stringify(changed));
  },
  async reset(trx, { state }) {
    await sql`truncate maqet_vms`.execute(trx);
    state.set(COMPLETE, true);
  },
  rebuilder: () => vmListRebuilder(),
};

/**
 * The rebuild fast path: every VM folded in a Map (the same `applyVmEvent`, so the same rows as
 * `apply`), then written once, in chunks of plain INSERTs into the emptied table.
 */
function vmListRebuilder(): ProjectionRebuilder {
  const vms = new Map<string, Rebuilt>();
  return {
    get full() {
      return vms.size >= REBUILD_LIMIT;
    },
    fold(events) {
      for (const event of events) {
        const vm = vms.get(event.streamId);
        if (vm !== undefined) {
          vm.view = applyVmEvent(vm.view, event)!; // a defined view stays defined
          vm.lastPosition = event.globalPosition;
          continue;
        }
        const view = applyVmEvent(undefined, event);
        if (view === undefined) continue; // no vm.defined yet: nothing to list
        vms.set(event.streamId, { view, firstPosition: event.globalPosition, lastPosition: event.globalPosition });
      }
    },
    async write(trx, { state }) {
      let sent: Promise<void> = Promise.resolve();
      let chunk: unknown[][] = [];
      const send = async () => {
        const json = JSON.stringify(chunk);
        chunk = [];
        await sent;
        sent = insert(trx, json);
        sent.catch(() => {}); // awaited before the next chunk, or at the end
        // Let the driver send it; the next chunk is encoded while the server inserts this one.
        await new Promise((resolve) => setImmediate(resolve));
      };
      for (const vm of vms.values()) {
        chunk.push(toRow(vm.view, vm.firstPosition, vm.lastPosition));
        if (chunk.length === WRITE_CHUNK) await send();
      }
      if (chunk.length > 0) await send();
      await sent;
      // What apply would have cached: every row, when they fit.
      if (vms.size <= CACHE_LIMIT) {
        for (const [streamId, vm] of vms) state.set(streamId, { view: vm.view, firstPosition: vm.firstPosition });
      } else {
        state.clear();
      }
      vms.clear();
    },
  };
}

/**
 * A {@link VmDirectory} over `maqet_vms`: each call first catches the projection up (a cheap
 * empty read when nothing changed), then reads rows. Throws PROJECTION_FAILED when the
 * projection is stalled at an event it cannot apply.
 *
 * @example
 * ```ts
 * const orchestrator = new Orchestrator({ ports, store, directory: projectedVmDirectory(runner, db) });
 * ```
 */
export function projectedVmDirectory(
  runner: Pick<ProjectionRunner, "catchUp">,
  db: Db,
  store?: Pick<EventStore, "readStream">,
): VmDirectory {
  return {
    namesClaimedByStore: true,
    list: async (options = {}) => {
      await runner.catchUp(VM_LIST_PROJECTION);
      const removed = options.includeRemoved ? sql`true` : sql`status <> 'removed'`;
      const { rows } = await sql<VmRow>`
        select stream_id, config, view, first_position from maqet_vms
         where ${removed} order by first_position`.execute(db);
      return rows.map(decodeView);
    },
    find: async (nameOrId) => {
      await runner.catchUp(VM_LIST_PROJECTION);
      const { rows } = await sql<VmRow>`
        select stream_id, config, view, first_position from maqet_vms
         where status <> 'removed' and (name = ${nameOrId} or stream_id = ${vmStreamId(nameOrId)})
         order by (name = ${nameOrId}) desc, first_position limit 1`.execute(db);
      if (rows[0] !== undefined) return decodeView(rows[0]);
      return store === undefined ? undefined : readYourWrites(db, store, nameOrId);
    },
  };
}

/**
 * Read-your-writes for one VM. The projection reads below the transaction watermark, so on a
 * server where some other session keeps a transaction open, a VM added a moment ago may not be
 * in `maqet_vms` yet. The name claim and the stream are committed with the append itself: look
 * there (no watermark) and fold the stream, so `add web && start web` never says "not found".
 */
async function readYourWrites(
  db: Db,
  store: Pick<EventStore, "readStream">,
  nameOrId: string,
): Promise<VmView | undefined> {
  const { rows } = await sql<{ stream_id: string }>`
    select stream_id from maqet_vm_names where name = ${nameOrId}
    union all
    select stream_id from maqet_streams where stream_id = ${vmStreamId(nameOrId)}
    limit 1`.execute(db);
  const streamId = rows[0]?.stream_id;
  if (streamId === undefined) return undefined;
  const view = foldVmEvents(await store.readStream(streamId));
  return view === undefined || view.status === "removed" ? undefined : view;
}

/** `maqet_vms` columns, in the order {@link toRow} gives their values, and their SQL types. */
const COLUMNS = [
  ["stream_id", "text"],
  ["vm_id", "text"],
  ["name", "text"],
  ["status", "text"],
  ["detail", "text"],
  ["pid", "integer"],
  ["qmp_socket", "text"],
  ["runtime_dir", "text"],
  ["qemu_version", "text"],
  ["accel", "text"],
  ["accel_in_use", "text"],
  ["config", "jsonb"],
  ["config_path", "text"],
  ["version", "bigint"],
  ["first_position", "bigint"],
  ["last_position", "bigint"],
  ["defined_at", "timestamptz"],
  ["started_at", "timestamptz"],
  ["updated_at", "timestamptz"],
  ["view", "jsonb"],
] as const;

/** A row as a JSON array (positional: no keys to repeat, nor to look up). */
function toRow(view: VmView, firstPosition: number, lastPosition: number): unknown[] {
  const config = view.config;
  return [
    view.streamId,
    view.vmId,
    view.name,
    view.status,
    statusDetail(view),
    view.pid ?? null,
    view.qmpSocket ?? null,
    view.runtimeDir ?? null,
    view.qemuVersion ?? null,
    config.accel ?? null,
    view.accelUsed ?? null,
    encodeStoredConfig(config), // ordered: jsonb would reorder the keys MAQET's arguments depend on
    view.configPath ?? null,
    view.version,
    firstPosition,
    lastPosition,
    view.definedAt.toISOString(),
    view.startedAt?.toISOString() ?? null,
    view.updatedAt.toISOString(),
    encodeFields(view, "config"),
  ];
}

const COLUMN_NAMES = sql.raw(COLUMNS.map(([name]) => name).join(", "));
// From each array element: text as is, jsonb without a round trip through text, the rest cast.
const ELEMENT_VALUES = sql.raw(
  COLUMNS.map(([, type], i) =>
    type === "jsonb" ? `r->${i}` : type === "text" ? `r->>${i}` : `(r->>${i})::${type}`,
  ).join(", "),
);

/** Inserts rows (a JSON array of {@link toRow} arrays) in one statement with one parameter. */
function insertRows(rows: string) {
  return sql`insert into maqet_vms (${COLUMN_NAMES}) select ${ELEMENT_VALUES} from jsonb_array_elements(${rows}::jsonb) as r`;
}

/** Inserts rows into the emptied table (a rebuild): no conflict to look for. */
async function insert(trx: Db, rows: string): Promise<void> {
  await insertRows(rows).execute(trx);
}

/** Upserts rows (a JSON array of {@link toRow} arrays) in one statement with one parameter. */
async function upsert(trx: Db, rows: string): Promise<void> {
  await sql`
    ${insertRows(rows)}
    on conflict (stream_id) do update set
           vm_id = excluded.vm_id, name = excluded.name, status = excluded.status, detail = excluded.detail,
           pid = excluded.pid, qmp_socket = excluded.qmp_socket, runtime_dir = excluded.runtime_dir,
           qemu_version = excluded.qemu_version, accel = excluded.accel, accel_in_use = excluded.accel_in_use,
           config = excluded.config, config_path = excluded.config_path, version = excluded.version,
           last_position = excluded.last_position, defined_at = excluded.defined_at,
           started_at = excluded.started_at, updated_at = excluded.updated_at, view = excluded.view`.execute(trx);
}

const DATE_TAG = "$date";

/** The view as JSON with every Date as `{"$date": ISO}`, so decoding restores Dates wherever they are. */
function encodeJson(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Date) return { [DATE_TAG]: value.toISOString() };
  if (Array.isArray(value)) return value.map(encodeJson);
  return encodeFields(value);
}

/** An object's defined fields (but `skip`), encoded by {@link encodeJson}. */
function encodeFields(value: object, skip?: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const entry = (value as Record<string, unknown>)[key];
    if (entry !== undefined && key !== skip) out[key] = encodeJson(entry);
  }
  return out;
}

function decodeJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decodeJson);
  if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    if (keys.length === 1 && keys[0] === DATE_TAG && typeof record[DATE_TAG] === "string") {
      return new Date(record[DATE_TAG]);
    }
    const out: Record<string, unknown> = {};
    for (const key of keys) out[key] = decodeJson(record[key]);
    return out;
  }
  return value;
}

function decodeView(row: VmRow): VmView {
  const view = decodeJson(parse(row.view)) as Omit<VmView, "config">;
  return { ...view, config: decodeStoredConfig(parse(row.config)) };
}

/** jsonb arrives parsed from both drivers; a string only if a driver was told not to parse. */
function parse(value: unknown): unknown {
  return typeof value === "string" ? JSON.parse(value) : value;
}
