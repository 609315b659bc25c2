/**
 * VM placements (migrations/0009-hosts.ts): which host owns each VM, and its owner epoch (the
 * fencing token). {@link PlacementStore.place} changes the owner and appends `vm.placed` with the
 * new epoch in ONE transaction; the append's epoch check (a trigger) then refuses any event an
 * older owner still tries to write.
 *
 * Lock order: the VM's stream row first, then its placement row, as every append takes them (the
 * append locks the stream row, then its epoch check share-locks the placement row), so a
 * placement and an append cannot deadlock.
 *
 * @example
 * ```ts
 * const placements = new PlacementStore(db, () => metadata);
 * const { epoch } = await placements.place(vmId, "lab2", "new");
 * ```
 */
import { type Kysely, sql } from "kysely";
import { MaqetError } from "../errors/maqet-error.ts";
import { appendToStream } from "./append-to-stream.ts";
import type { EventMetadata, NewEvent, StoredEvent } from "./envelope.ts";
import type { PlacementEventData, PlacementReason } from "./placement-events.ts";
import type { Database } from "./schema.ts";
import { uuidv7 } from "./uuidv7.ts";
import { vmEvent, vmStreamId } from "./vm-events.ts";

/** A VM's owner. */
export interface Placement {
  vmId: string;
  host: string;
  epoch: number;
  reason: string;
}

export class PlacementStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly metadata: () => EventMetadata,
  ) {}

  /**
   * Places the VM on `host` (epoch + 1) and records `vm.placed` in the same transaction.
   * `expectFrom`: the placement must still be on this host (undefined: must be unplaced), or
   * CONCURRENCY_CONFLICT (another placement won the race).
   */
  async place(
    vmId: string,
    host: string,
    reason: PlacementReason,
    options: {
      expectFrom?: string | null;
      constraints?: Record<string, string>;
      /**
       * An HA recovery: `expectFrom`'s host must still be fenced, checked under a share lock on
       * its row, which a re-join (an update of that row) waits for: the fenced host re-joining
       * and this placement never both win, so a VM is not started by its returning owner and
       * placed elsewhere at once (CONCURRENCY_CONFLICT when the host came back first).
       */
      expectFenced?: boolean;
      /** Events to append after `vm.placed` in the same transaction, under the new epoch (`vm.recovering` goes before). */
      before?: Array<{ type: "vm.recovering"; data: PlacementEventData["vm.recovering"] }>;
      /** Events to append before `vm.placed` in the same transaction (a migration's switchover), under the new epoch. */
      first?: NewEvent[];
      /** Events to append after `vm.placed` in the same transaction (a migration's `vm.owner-changed`), under the new epoch. */
      after?: (epoch: number) => NewEvent[];
    } = {},
  ): Promise<Placement & { events: StoredEvent[] }> {
    const streamId = vmStreamId(vmId);
    return this.db.transaction().execute(async (trx) => {
      const stream = await sql`select version from maqet_streams where stream_id = ${streamId} for update`.execute(trx);
      if (stream.rows.length === 0) {
        throw new MaqetError("VM_NOT_FOUND", `VM ${vmId} has no stream: define it before placing it.`, {
          details: { vmId },
        });
      }
      const current = (
        await sql<{ host: string; epoch: string | number }>`
          select host, epoch from maqet_placements where stream_id = ${streamId} for update`.execute(trx)
      ).rows[0];
      if (options.expectFrom !== undefined && (current?.host ?? null) !== options.expectFrom) {
        throw new MaqetError(
          "CONCURRENCY_CONFLICT",
          `VM ${vmId} was placed on ${current?.host ?? "no host"} meanwhile (expected ${options.expectFrom ?? "no host"}).`,
          { details: { vmId, expected: options.expectFrom, actual: current?.host ?? null } },
        );
      }
      if (options.expectFenced && options.expectFrom) {
        const host = await sql<{ fenced: boolean }>`
          select fenced_at is not null as fenced from maqet_hosts where name = ${options.expectFrom} for share`.execute(
          trx,
        );
        if (host.rows[0]?.fenced !== true) {
          throw new MaqetError(
            "CONCURRENCY_CONFLICT",
            `VM ${vmId} stays on ${options.expectFrom}: that host is no longer fenced (it came back).`,
            { details: { vmId, expected: options.expectFrom, actual: options.expectFrom } },
          );
        }
      }
      const epoch = current === undefined ? 1 : Number(current.epoch) + 1;
      // The old owner's process lease on the VM goes with its ownership: its epoch is stale now,
      // so whatever it still holds could only be refused at the stream.
      if (current !== undefined && current.host !== host) {
        await sql`delete from maqet_leases where vm_id = ${vmId}`.execute(trx);
      }
      await sql`insert into maqet_placements (stream_id, vm_id, host, epoch, reason)
                values (${streamId}, ${vmId}, ${host}, ${epoch}, ${reason})
                on conflict (stream_id) do update set host = excluded.host, epoch = excluded.epoch,
                  reason = excluded.reason, placed_at = clock_timestamp()`.execute(trx);
      const metadata = { ...this.metadata(), epoch };
      const own = (e: NewEvent) => ({ ...e, id: e.id ?? uuidv7(), metadata: { ...metadata, ...e.metadata } });
      const events = [
        ...(options.first ?? []).map(own),
        ...(options.before ?? []).map((e) => ({ id: uuidv7(), ...vmEvent(e.type, e.data), metadata })),
        {
          id: uuidv7(),
          ...vmEvent("vm.placed", {
            host,
            reason,
            epoch,
            ...(current ? { from: current.host } : {}),
            ...(options.constraints && Object.keys(options.constraints).length
              ? { constraints: options.constraints }
              : {}),
          }),
          metadata,
        },
        ...(options.after?.(epoch) ?? []).map((e) => ({
          ...e,
          id: e.id ?? uuidv7(),
          metadata: { ...metadata, ...e.metadata },
        })),
      ];
      const stored = await appendToStream(trx, streamId, events, "stream_exists");
      return { vmId, host, epoch, reason, events: stored.events };
    });
  }

  /** The owner of a VM, or undefined when it was never placed. */
  async ownerOf(vmId: string): Promise<Placement | undefined> {
    const { rows } = await sql<{ vm_id: string; host: string; epoch: string | number; reason: string }>`
      select vm_id, host, epoch, reason from maqet_placements where stream_id = ${vmStreamId(vmId)}`.execute(this.db);
    const row = rows[0];
    return row ? { vmId: row.vm_id, host: row.host, epoch: Number(row.epoch), reason: row.reason } : undefined;
  }

  /**
   * The `--constraint` labels the VM was added with (the latest `vm.placed` that names any), or
   * undefined: a recovery or a drain places it again only on a host that carries them.
   */
  async constraintsOf(vmId: string): Promise<Record<string, string> | undefined> {
    const { rows } = await sql<{ constraints: Record<string, string> | string | null }>`
      select data->'constraints' as constraints from maqet_events
       where stream_id = ${vmStreamId(vmId)} and type = 'vm.placed' and data ? 'constraints'
       order by stream_version desc limit 1`.execute(this.db);
    const found = rows[0]?.constraints;
    if (found === undefined || found === null) return undefined;
    return typeof found === "string" ? (JSON.parse(found) as Record<string, string>) : found;
  }

  /** Every placement (of VMs not removed: those still holding their name). */
  async all(): Promise<Placement[]> {
    const { rows } = await sql<{ vm_id: string; host: string; epoch: string | number; reason: string }>`
      select p.vm_id, p.host, p.epoch, p.reason from maqet_placements p
        join maqet_vm_names n on n.stream_id = p.stream_id order by p.placed_at`.execute(this.db);
    return rows.map((r) => ({ vmId: r.vm_id, host: r.host, epoch: Number(r.epoch), reason: r.reason }));
  }
}
