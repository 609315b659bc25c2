/**
 * The audit trail's entries and their hash chain. Pure: the audit projection
 * (src/events/projections/audit-projection.ts) feeds events in the store's read order and
 * stores what {@link AuditChain.next} returns; `audit verify` rebuilds the same entries and
 * compares.
 *
 * Every event type becomes an entry without any audit code in the feature that records it:
 * the operation is the event type, the parameters are the names of its data's keys (values never:
 * they may be secrets), the outcome follows the catalogue's naming rules (`-requested`,
 * `-failed`), the who and the correlation id come from the envelope. QMP facts say more: their
 * argument names, tier and policy rule.
 *
 * Tamper evidence: each entry's `hash` is SHA-256 over its fields and the previous entry's hash,
 * so editing, deleting or reordering a row breaks every link after it.
 *
 * @example
 * ```ts
 * const chain = new AuditChain();
 * for (const event of await store.readAll()) console.log((await chain.next(event)).hash);
 * ```
 */
import type { StoredEvent } from "./envelope.ts";

/** One line of the audit trail. Field names are a contract: add, never rename. */
export interface AuditEntry {
  /** 1-based place in the chain (the store's read order). */
  seq: number;
  /** The event's global position and id. */
  position: number;
  eventId: string;
  /** When the event was recorded (ISO 8601, milliseconds). */
  at: string;
  streamId: string;
  /** The VM's id and its name at that time (for a refused QMP command: the name as given). */
  vmId: string | null;
  vm: string | null;
  /** The event type, e.g. `vm.start-requested`, `qmp.command-executed`. */
  operation: string;
  /** Parameter names (QMP argument names, or the event's data keys). Never values. */
  parameters: string[];
  /** QMP security tier, for QMP facts. */
  tier: string | null;
  /** The QMP policy rule that decided, for QMP facts. */
  rule: string | null;
  /** `requested`, `ok`, `failed`, `error` (a QMP error reply), `refused`. */
  outcome: string;
  /** For QMP facts the command; otherwise the one word that says most: a stop detail, an error code, a tag. */
  detail: string | null;
  user: string | null;
  uid: number | null;
  host: string | null;
  pid: number | null;
  correlationId: string | null;
  source: string | null;
  /** The previous entry's hash (64 zeros for the first). */
  prevHash: string;
  hash: string;
}

/** The first entry's `prevHash`. */
export const GENESIS_HASH = "0".repeat(64);

/** The audit's view of one event before it is placed in the chain. */
export type AuditFields = Omit<AuditEntry, "seq" | "prevHash" | "hash">;

/** Data keys that name the subject of a fact, in the order `detail` looks for them. */
const DETAIL_KEYS = ["detail", "command", "tag", "step", "reason", "code", "drive"] as const;

/**
 * What the audit records for an event, given the VM names known so far (vm id → name).
 *
 * @example
 * ```ts
 * auditFields(event, new Map([["0b5c…", "web"]])).operation; // "vm.started"
 * ```
 */
export function auditFields(event: StoredEvent, names: ReadonlyMap<string, string>): AuditFields {
  const data = isRecord(event.data) ? event.data : {};
  const actor: Record<string, unknown> = isRecord(event.metadata?.actor) ? event.metadata.actor : {};
  const vmId = event.streamId.startsWith("vm-")
    ? event.streamId.slice(3)
    : typeof data.vmId === "string"
      ? data.vmId
      : null;
  let vm = vmId === null ? null : (names.get(vmId) ?? null);
  if (event.type === "vm.defined" && typeof data.name === "string") vm = data.name;
  if (vm === null && typeof data.vm === "string") vm = data.vm;
  const qmp = event.type.startsWith("qmp.");
  // Sorted: jsonb does not keep key order, and the chain must not depend on the store.
  const parameters =
    qmp && Array.isArray(data.argumentNames) ? data.argumentNames.map(String) : Object.keys(data).sort();
  return {
    position: event.globalPosition,
    eventId: event.id,
    at: event.recordedAt.toISOString(),
    streamId: event.streamId,
    vmId,
    vm,
    operation: event.type,
    parameters,
    tier: typeof data.tier === "string" ? data.tier : null,
    rule: typeof data.rule === "string" ? data.rule : null,
    outcome: outcomeOf(event.type, data),
    detail: qmp && typeof data.command === "string" ? data.command : detailOf(data),
    user: typeof actor.user === "string" ? actor.user : null,
    uid: typeof actor.uid === "number" ? actor.uid : null,
    host: typeof actor.host === "string" ? actor.host : null,
    pid: typeof actor.pid === "number" ? actor.pid : null,
    correlationId: typeof event.metadata?.correlationId === "string" ? event.metadata.correlationId : null,
    source: typeof event.metadata?.source === "string" ? event.metadata.source : null,
  };
}

function outcomeOf(type: string, data: Record<string, unknown>): string {
  if (type === "qmp.command-rejected") return "refused";
  if (type === "qmp.command-executed") return data.outcome === "error" ? "error" : "ok";
  if (type.endsWith("-requested")) return "requested";
  if (type.endsWith("-failed")) return "failed";
  return "ok";
}

function detailOf(data: Record<string, unknown>): string | null {
  for (const key of DETAIL_KEYS) {
    const value = data[key];
    if (typeof value === "string" && value !== "") return value;
  }
  return null;
}

/**
 * The hash of an entry: SHA-256 (hex) over its fields, in a fixed order, and `prevHash`.
 *
 * @example
 * ```ts
 * const ok = (await hashAuditEntry(row)) === row.hash;
 * ```
 */
export async function hashAuditEntry(entry: Omit<AuditEntry, "hash">): Promise<string> {
  const canonical = JSON.stringify([
    entry.seq,
    entry.position,
    entry.eventId,
    entry.at,
    entry.streamId,
    entry.vmId,
    entry.vm,
    entry.operation,
    entry.parameters,
    entry.tier,
    entry.rule,
    entry.outcome,
    entry.detail,
    entry.user,
    entry.uid,
    entry.host,
    entry.pid,
    entry.correlationId,
    entry.source,
    entry.prevHash,
  ]);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Where a chain continues from: the last entry's seq and hash, and the VM names seen so far. */
export interface AuditChainState {
  seq: number;
  hash: string;
  names: Map<string, string>;
}

/**
 * Builds entries in order, each chained to the previous one.
 *
 * @example
 * ```ts
 * const chain = new AuditChain({ seq: last.seq, hash: last.hash, names });
 * const entry = await chain.next(event);
 * ```
 */
export class AuditChain {
  #state: AuditChainState;

  constructor(state: AuditChainState = { seq: 0, hash: GENESIS_HASH, names: new Map() }) {
    this.#state = { ...state, names: new Map(state.names) };
  }

  get state(): AuditChainState {
    return this.#state;
  }

  async next(event: StoredEvent): Promise<AuditEntry> {
    const fields = auditFields(event, this.#state.names);
    if (event.type === "vm.defined" && fields.vmId !== null && fields.vm !== null) {
      this.#state.names.set(fields.vmId, fields.vm);
    }
    const unsigned = { ...fields, seq: this.#state.seq + 1, prevHash: this.#state.hash };
    const entry: AuditEntry = { ...unsigned, hash: await hashAuditEntry(unsigned) };
    this.#state = { ...this.#state, seq: entry.seq, hash: entry.hash };
    return entry;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
