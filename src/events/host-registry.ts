/**
 * The hosts of a cluster in the database (migrations/0009-hosts.ts): join, renew the lease,
 * leave, list with each host's state, record the transitions observers see (suspected, down,
 * fenced after the grace), and the operator's drain / restore / mark-dead / rm. Every lease
 * decision is taken by the DATABASE's clock (`clock_timestamp()`), never a host's.
 *
 * Each transition is a compare-and-set on `recorded_state` in the same transaction as the fact it
 * appends to the host's stream (`host-<name>`), so two observers never record one twice.
 *
 * @example
 * ```ts
 * const hosts = new HostRegistry(db, () => ({ actor, source: "agent" }));
 * const { term } = await hosts.join({ name: "lab1", labels: {}, capacity, leaseTtlMs: 10_000, fenceAfterMs: 5_000 });
 * await hosts.renew("lab1", term);
 * ```
 */
import { type Kysely, sql, type Transaction } from "kysely";
import { MaqetError } from "../errors/maqet-error.ts";
import { appendToStream } from "./append-to-stream.ts";
import type { EventMetadata } from "./envelope.ts";
import { type HostCapacity, type HostEventData, type HostEventType, hostEvent, hostStreamId } from "./host-events.ts";
import type { Database } from "./schema.ts";
import { uuidv7 } from "./uuidv7.ts";

/** A host's state, as `maqet host ls` shows it. */
export type HostState = "up" | "suspected" | "down" | "fenced" | "left";

/** One host, as listed. */
export interface HostInfoRow {
  name: string;
  state: HostState;
  labels: Record<string, string>;
  capacity: HostCapacity;
  /** VMs placed here and not removed. */
  vms: number;
  draining: boolean;
  term: number;
  lastRenewal: string;
  /** Milliseconds since the lease expired (negative: still valid for that long), by the database clock. */
  expiredMs: number;
  leaseTtlMs: number;
  fenceAfterMs: number;
  fenceMethod: string | null;
  joinedAt: string;
}

export interface JoinRequest {
  name: string;
  labels: Record<string, string>;
  capacity: HostCapacity;
  leaseTtlMs: number;
  fenceAfterMs: number;
}

/** What a renewal found. */
export type Renewal =
  /** Renewed; the lease now runs `ttlMs` from the database's clock at the renewal. */
  | { ok: true }
  /** Not renewed: the host was fenced, left, or re-joined under a newer term. */
  | { ok: false; reason: "fenced" | "left" | "superseded" | "unknown"; fenceMethod?: string };

interface HostRow {
  name: string;
  state: HostState;
  labels: Record<string, string> | string;
  memory_bytes: string | number;
  cpus: number;
  vms: string | number;
  draining: boolean;
  term: string | number;
  renewed_at: Date | string;
  expired_ms: string | number;
  lease_ttl_ms: number;
  fence_after_ms: number;
  fence_method: string | null;
  joined_at: Date | string;
  recorded_state: string;
}

/**
 * The state of a host row, computed in SQL from the database clock: `down` half a time to live
 * after the lease expired; fencing is confirmed (`fenced`) by a record, or once the lease expired
 * longer ago than the host's self-fence grace plus that margin (see {@link HostRegistry.observe}).
 */
export const HOST_STATE_SQL = `case when h.left_at is not null then 'left'
     when h.fenced_at is not null then 'fenced'
     when h.lease_expires_at > clock_timestamp() then 'up'
     when h.lease_expires_at + make_interval(secs => h.lease_ttl_ms / 2000.0) > clock_timestamp() then 'suspected'
     else 'down' end`;

/** Fencing is taken as confirmed this long after the lease expired: the self-fence grace plus a margin. */
const GRACE_CONFIRMED_SQL = `h.lease_expires_at + make_interval(secs => (h.fence_after_ms + h.lease_ttl_ms / 2.0) / 1000.0)`;

export class HostRegistry {
  constructor(
    private readonly db: Kysely<Database>,
    /** Metadata for the facts this registry appends (actor, source, correlation id). */
    private readonly metadata: () => EventMetadata,
  ) {}

  /**
   * Whether the server acknowledges a commit only once it is durable (`synchronous_commit` not
   * `off`): fencing, claims and outcomes rest on it (docs/cluster.md, set-up).
   */
  async commitsDurable(): Promise<boolean> {
    const { rows } = await sql<{ setting: string }>`
      select current_setting('synchronous_commit') as setting`.execute(this.db);
    return rows[0]?.setting !== "off";
  }

  /** Joins (or re-joins, under a new term): the lease starts now, by the database clock. */
  async join(request: JoinRequest): Promise<{ term: number }> {
    return this.db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ term: string | number }>`
        insert into maqet_hosts as h (name, labels, memory_bytes, cpus, lease_ttl_ms, fence_after_ms, lease_expires_at)
        values (${request.name}, ${JSON.stringify(request.labels)}::jsonb, ${request.capacity.memoryBytes},
                ${request.capacity.cpus}, ${request.leaseTtlMs}, ${request.fenceAfterMs},
                clock_timestamp() + make_interval(secs => ${request.leaseTtlMs / 1000}))
        on conflict (name) do update set
          labels = excluded.labels, memory_bytes = excluded.memory_bytes, cpus = excluded.cpus,
          lease_ttl_ms = excluded.lease_ttl_ms, fence_after_ms = excluded.fence_after_ms,
          term = h.term + 1, joined_at = clock_timestamp(), renewed_at = clock_timestamp(),
          lease_expires_at = excluded.lease_expires_at, recorded_state = 'up',
          fenced_at = null, fence_method = null, left_at = null
        returning term`.execute(trx);
      const term = Number(rows[0]!.term);
      await this.#append(trx, request.name, "host.joined", {
        labels: request.labels,
        capacity: request.capacity,
        term,
        leaseTtlMs: request.leaseTtlMs,
        fenceAfterMs: request.fenceAfterMs,
      });
      return { term };
    });
  }

  /** Renews the lease of `name` under `term`, from the database clock. */
  async renew(name: string, term: number): Promise<Renewal> {
    const { rows } = await sql<{
      term: string | number;
      fenced: boolean;
      left: boolean;
      fence_method: string | null;
      renewed: boolean;
    }>`
      with renewed as (
        update maqet_hosts set renewed_at = clock_timestamp(),
               lease_expires_at = clock_timestamp() + make_interval(secs => lease_ttl_ms / 1000.0),
               recorded_state = case when recorded_state in ('suspected', 'down') then 'up' else recorded_state end
         where name = ${name} and term = ${term} and fenced_at is null and left_at is null
        returning name)
      select h.term, h.fenced_at is not null as fenced, h.left_at is not null as left, h.fence_method,
             exists (select from renewed) as renewed
        from maqet_hosts h where h.name = ${name}`.execute(this.db);
    const row = rows[0];
    if (row === undefined) return { ok: false, reason: "unknown" };
    if (row.renewed) return { ok: true };
    if (Number(row.term) !== term) return { ok: false, reason: "superseded" };
    if (row.fenced) return { ok: false, reason: "fenced", fenceMethod: row.fence_method ?? undefined };
    return { ok: false, reason: "left" };
  }

  /** The agent stops: the host leaves (its VMs keep running and stay placed here). */
  async leave(name: string, term: number): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const { rows } = await sql`update maqet_hosts set left_at = clock_timestamp(), recorded_state = 'left'
                                  where name = ${name} and term = ${term} and left_at is null and fenced_at is null
                                  returning name`.execute(trx);
      if (rows.length > 0) await this.#append(trx, name, "host.left", { reason: "stopped" });
    });
  }

  /** Every host with its state, VM count and capacity, by name. */
  async list(): Promise<HostInfoRow[]> {
    const { rows } = await sql<HostRow>`
      select h.name, ${sql.raw(HOST_STATE_SQL)} as state, h.labels, h.memory_bytes, h.cpus, h.draining, h.term,
             h.renewed_at, h.lease_ttl_ms, h.fence_after_ms, h.fence_method, h.joined_at, h.recorded_state,
             (extract(epoch from clock_timestamp() - h.lease_expires_at) * 1000)::float8 as expired_ms,
             (select count(*) from maqet_placements p join maqet_vm_names n on n.stream_id = p.stream_id
               where p.host = h.name) as vms
        from maqet_hosts h order by h.name`.execute(this.db);
    return rows.map(toHostInfo);
  }

  /** One host's state now (undefined: no such host): one indexed row, for the routing hot path. */
  async stateOf(name: string): Promise<{ state: HostState; lastRenewal: string } | undefined> {
    const { rows } = await sql<{ state: HostState; renewed_at: Date | string }>`
      select ${sql.raw(HOST_STATE_SQL)} as state, h.renewed_at from maqet_hosts h where h.name = ${name}`.execute(
      this.db,
    );
    const row = rows[0];
    return row ? { state: row.state, lastRenewal: new Date(row.renewed_at).toISOString() } : undefined;
  }

  /** One host; HOST_NOT_FOUND naming the known ones. */
  async get(name: string): Promise<HostInfoRow> {
    const all = await this.list();
    const found = all.find((h) => h.name === name);
    if (found) return found;
    throw new MaqetError(
      "HOST_NOT_FOUND",
      `Host '${name}' not found. ${all.length ? `Known hosts: ${all.map((h) => h.name).join(", ")}.` : "No host has joined yet."} ` +
        "A host joins when `maqet agent --host NAME` starts against this database.",
      { details: { name, known: all.map((h) => h.name) } },
    );
  }

  /**
   * Records what an observer sees now: a host whose lease expired becomes `suspected`, then
   * `down`, then `fenced` (method `grace`) once the lease expired longer ago than its self-fence
   * grace plus a margin. Returns the facts recorded by this call (another observer may have
   * recorded a transition first; then this one records nothing for it).
   */
  async observe(): Promise<Array<{ host: string; type: HostEventType }>> {
    const recorded: Array<{ host: string; type: HostEventType }> = [];
    const { rows } = await sql<{ name: string; state: HostState; recorded_state: string; confirmed: boolean }>`
      select h.name, ${sql.raw(HOST_STATE_SQL)} as state, h.recorded_state,
             ${sql.raw(GRACE_CONFIRMED_SQL)} < clock_timestamp() as confirmed
        from maqet_hosts h
       where h.left_at is null and h.fenced_at is null and h.lease_expires_at < clock_timestamp()`.execute(this.db);
    for (const row of rows) {
      const steps: Array<"suspected" | "down" | "fenced"> = [];
      const order = ["up", "suspected", "down", "fenced"];
      const target = row.confirmed ? "fenced" : row.state;
      for (const s of ["suspected", "down", "fenced"] as const) {
        if (order.indexOf(s) > order.indexOf(row.recorded_state) && order.indexOf(s) <= order.indexOf(target)) {
          steps.push(s);
        }
      }
      for (const step of steps) {
        if (await this.#transition(row.name, step)) recorded.push({ host: row.name, type: `host.${step}` });
      }
    }
    return recorded;
  }

  /** One transition, if it still holds by the database clock and no observer recorded it first. */
  async #transition(name: string, step: "suspected" | "down" | "fenced"): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const previous = step === "suspected" ? "up" : step === "down" ? "suspected" : "down";
      const holds =
        step === "suspected"
          ? "h.lease_expires_at < clock_timestamp()"
          : step === "down"
            ? "h.lease_expires_at + make_interval(secs => h.lease_ttl_ms / 2000.0) < clock_timestamp()"
            : `${GRACE_CONFIRMED_SQL} < clock_timestamp()`;
      const { rows } = await sql<{ renewed_at: Date | string; expired_ms: number | string }>`
        update maqet_hosts h set recorded_state = ${step}
               ${step === "fenced" ? sql`, fenced_at = clock_timestamp(), fence_method = 'grace'` : sql``}
         where h.name = ${name} and h.recorded_state = ${previous} and h.fenced_at is null and h.left_at is null
           and ${sql.raw(holds)}
        returning h.renewed_at, (extract(epoch from clock_timestamp() - h.lease_expires_at) * 1000)::float8 as expired_ms`.execute(
        trx,
      );
      const row = rows[0];
      if (row === undefined) return false;
      const lastRenewal = new Date(row.renewed_at).toISOString();
      const expiredMs = Math.round(Number(row.expired_ms));
      if (step === "fenced") {
        await this.#append(trx, name, "host.fenced", {
          method: "grace",
          reason: `lease expired ${expiredMs} ms ago (last renewal ${lastRenewal}), past the self-fence grace`,
        });
      } else await this.#append(trx, name, `host.${step}`, { lastRenewal, expiredMs });
      return true;
    });
  }

  /**
   * The host fenced itself (its agent stopped its VMs after losing the lease): recorded when the
   * agent can still write. Does nothing if the host re-joined under a newer term meanwhile.
   */
  async recordSelfFence(name: string, term: number, reason: string, vmsStopped: number): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const { rows } = await sql`update maqet_hosts set fenced_at = coalesce(fenced_at, clock_timestamp()),
                                        fence_method = coalesce(fence_method, 'self'), recorded_state = 'fenced'
                                  where name = ${name} and term = ${term} and left_at is null returning fence_method`.execute(
        trx,
      );
      if (rows.length === 0) return false;
      await this.#append(trx, name, "host.fenced", { method: "self", reason, vmsStopped });
      return true;
    });
  }

  /** `maqet host mark-dead`: the operator confirms the host is dead. Refused while its lease is valid. */
  async markDead(name: string): Promise<HostInfoRow> {
    const host = await this.get(name);
    if (host.state === "fenced") return host;
    if (host.state === "up") {
      throw new MaqetError(
        "HOST_INVALID_STATE",
        `Host '${name}' renewed its lease ${Math.round((host.leaseTtlMs + host.expiredMs) / 1000)} s ago: it is alive, ` +
          "so it cannot be marked dead. Stop its agent (and make sure its VMs are gone), then mark it dead once `maqet host ls` shows it suspected or down.",
        { details: { name, state: host.state } },
      );
    }
    await this.db.transaction().execute(async (trx) => {
      const { rows } = await sql`update maqet_hosts h set fenced_at = clock_timestamp(), fence_method = 'mark-dead',
                                        recorded_state = 'fenced'
                                  where h.name = ${name} and h.fenced_at is null and h.lease_expires_at < clock_timestamp()
                                  returning h.name`.execute(trx);
      if (rows.length === 0)
        throw new MaqetError("HOST_INVALID_STATE", `Host '${name}' renewed its lease meanwhile: it is alive.`);
      await this.#append(trx, name, "host.fenced", { method: "mark-dead", reason: "confirmed by an operator" });
    });
    return this.get(name);
  }

  /** `maqet host drain` / `restore`: no new placements here while draining. */
  async setDraining(name: string, draining: boolean): Promise<HostInfoRow> {
    const host = await this.get(name);
    if (host.draining !== draining) {
      await this.db.transaction().execute(async (trx) => {
        await sql`update maqet_hosts set draining = ${draining} where name = ${name}`.execute(trx);
        if (draining) await this.#append(trx, name, "host.drain-requested", { vms: host.vms });
        else await this.#append(trx, name, "host.restored", {});
      });
    }
    return this.get(name);
  }

  /** `maqet host rm`: forgets a host that is not up and owns no VM. */
  async remove(name: string): Promise<void> {
    const host = await this.get(name);
    if (host.state === "up" || host.state === "suspected" || host.vms > 0) {
      throw new MaqetError(
        "HOST_INVALID_STATE",
        `Host '${name}' cannot be removed: it is ${host.state}${host.vms ? ` and owns ${host.vms} VM(s)` : ""}. ` +
          "Drain it (`maqet host drain`) and stop its agent first; a dead host is marked dead first (`maqet host mark-dead`).",
        { details: { name, state: host.state, vms: host.vms } },
      );
    }
    await this.db.transaction().execute(async (trx) => {
      await sql`delete from maqet_hosts where name = ${name}`.execute(trx);
      if (host.state !== "left") await this.#append(trx, name, "host.left", { reason: "removed" });
    });
  }

  async #append<K extends HostEventType>(
    trx: Transaction<Database>,
    name: string,
    type: K,
    data: HostEventData[K],
  ): Promise<void> {
    const event = hostEvent(type, data);
    await appendToStream(trx, hostStreamId(name), [{ id: uuidv7(), ...event, metadata: this.metadata() }], "any");
  }
}

function toHostInfo(row: HostRow): HostInfoRow {
  return {
    name: row.name,
    state: row.state,
    labels: typeof row.labels === "string" ? (JSON.parse(row.labels) as Record<string, string>) : row.labels,
    capacity: { memoryBytes: Number(row.memory_bytes), cpus: Number(row.cpus) },
    vms: Number(row.vms),
    draining: row.draining,
    term: Number(row.term),
    lastRenewal: new Date(row.renewed_at).toISOString(),
    expiredMs: Math.round(Number(row.expired_ms)),
    leaseTtlMs: Number(row.lease_ttl_ms),
    fenceAfterMs: Number(row.fence_after_ms),
    fenceMethod: row.fence_method,
    joinedAt: new Date(row.joined_at).toISOString(),
  };
}
