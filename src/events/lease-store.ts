/**
 * VM leases in the database (migrations/0004-leases.ts): which process drives which VM.
 * Whether a holder is still alive is the caller's judgement (`isAlive`, from /proc on this host),
 * and a holder on another host is alive while it renews within the time to live.
 *
 * @example
 * ```ts
 * const leases = new LeaseStore(db, me, { isAlive: (h) => probe(h), ttlMs: 30_000 });
 * await leases.acquire(vmId, 7);
 * ```
 */
import { type Kysely, sql } from "kysely";
import type { LeaseAcquired, LeaseHolder, VmLeases } from "../actors/ports.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import { vmBusyError } from "../errors/vm-busy-error.ts";

/** This process, as a lease holder. */
export interface LeaseIdentity {
  host: string;
  pid: number;
  processStart: string;
  command: string;
}

export interface LeaseStoreOptions {
  /** Is a holder on THIS host still the process that took the lease? */
  isAlive(holder: LeaseHolder): boolean;
  /** A holder on another host that has not renewed for this long is dead. Default 30 s. */
  ttlMs?: number;
  /** Names a VM in errors (the lease table only knows ids). */
  nameOf?(vmId: string): string;
}

interface LeaseRow {
  vm_id: string;
  host: string;
  pid: number;
  process_start: string;
  command: string;
  acquired_at: Date | string;
  renewed_at: Date | string;
  age_ms: number | string;
}

export class LeaseStore implements VmLeases {
  readonly #ttlMs: number;

  constructor(
    private readonly db: Kysely<unknown>,
    private readonly me: LeaseIdentity,
    private readonly options: LeaseStoreOptions,
  ) {
    this.#ttlMs = options.ttlMs ?? 30_000;
  }

  async acquire(vmId: string, streamVersion: number): Promise<LeaseAcquired> {
    return this.db.transaction().execute(async (trx) => {
      // Racing acquirers both insert-or-skip, then queue on the row lock: one decision at a time.
      await sql`insert into maqet_leases (vm_id, host, pid, process_start, command, stream_version)
                values (${vmId}, ${this.me.host}, ${this.me.pid}, ${this.me.processStart}, ${this.me.command}, ${streamVersion})
                on conflict (vm_id) do nothing`.execute(trx);
      const row = (
        await sql<LeaseRow>`select vm_id, host, pid, process_start, command, acquired_at, renewed_at,
                                   (extract(epoch from (now() - renewed_at)) * 1000)::float8 as age_ms
                              from maqet_leases where vm_id = ${vmId} for update`.execute(trx)
      ).rows[0];
      if (row === undefined) throw new MaqetError("STORE_ERROR", `Lease row for VM ${vmId} vanished while locked.`);
      const holder = toHolder(row);
      if (this.#isMe(holder)) {
        await sql`update maqet_leases set renewed_at = now(), stream_version = ${streamVersion}
                   where vm_id = ${vmId}`.execute(trx);
        return {};
      }
      const alive = holder.host === this.me.host ? this.options.isAlive(holder) : Number(row.age_ms) < this.#ttlMs;
      if (alive) throw vmBusyError(this.options.nameOf?.(vmId) ?? vmId, vmId, holder);
      await sql`update maqet_leases set host = ${this.me.host}, pid = ${this.me.pid}, process_start = ${this.me.processStart},
                       command = ${this.me.command}, acquired_at = now(), renewed_at = now(), stream_version = ${streamVersion}
                 where vm_id = ${vmId}`.execute(trx);
      return { takenOverFrom: holder };
    });
  }

  async renew(vmId: string): Promise<void> {
    await sql`update maqet_leases set renewed_at = now()
               where vm_id = ${vmId} and host = ${this.me.host} and pid = ${this.me.pid}
                 and process_start = ${this.me.processStart}`.execute(this.db);
  }

  async release(vmId: string): Promise<void> {
    await sql`delete from maqet_leases
               where vm_id = ${vmId} and host = ${this.me.host} and pid = ${this.me.pid}
                 and process_start = ${this.me.processStart}`.execute(this.db);
  }

  /** The current holder of a VM's lease, if any (for `status` and diagnostics). */
  async holder(vmId: string): Promise<LeaseHolder | undefined> {
    const row = (
      await sql<LeaseRow>`select vm_id, host, pid, process_start, command, acquired_at, renewed_at, 0 as age_ms
                            from maqet_leases where vm_id = ${vmId}`.execute(this.db)
    ).rows[0];
    return row ? toHolder(row) : undefined;
  }

  #isMe(holder: LeaseHolder): boolean {
    return holder.host === this.me.host && holder.pid === this.me.pid && holder.processStart === this.me.processStart;
  }
}

function toHolder(row: LeaseRow): LeaseHolder {
  return {
    host: row.host,
    pid: Number(row.pid),
    processStart: row.process_start,
    command: row.command,
    acquiredAt: new Date(row.acquired_at),
    renewedAt: new Date(row.renewed_at),
  };
}
