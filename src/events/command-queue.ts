/**
 * Commands routed to the host that owns a VM (migrations/0009-hosts.ts, `maqet_commands`): the
 * graphile-worker / pg-boss pattern. A caller inserts a row and NOTIFYs the owner's agent after
 * commit; the agent claims with `FOR UPDATE SKIP LOCKED`, one active command per VM (the queued
 * row waits while another of its VM runs: pg-boss's `key_strict_fifo`; a unique partial index
 * enforces it), runs it, writes the outcome and NOTIFYs the caller. A slow poll covers a lost
 * notification on both sides.
 *
 * A command claimed by an agent incarnation that died (its host re-joined under a newer term) is
 * re-queued when it is idempotent, failed otherwise: at once by its host's next incarnation
 * ({@link CommandQueue.rescue}), or by any member's sweep once the incarnation is over for certain
 * ({@link CommandQueue.sweepOrphans}: re-joined, fenced, left). A fenced host's queued commands
 * fail ({@link CommandQueue.failHost}). Never run twice: the outcome is
 * written only under the claim (`claimed_by`, `claimed_term`, state `running`).
 *
 * @example
 * ```ts
 * const queue = new CommandQueue(db);
 * const id = await queue.enqueue({ vmId, host: "lab3", method: "start", args: ["web", {}], caller: {}, idempotent: true });
 * const outcome = await queue.outcome(id);
 * ```
 */
import { type Kysely, sql } from "kysely";
import { HOST_STATE_SQL, type HostState } from "./host-registry.ts";
import { type Database, PREPARE_MARK } from "./schema.ts";
import { vmStreamId } from "./vm-events.ts";

/** Wakes the agent of the host named in the payload. */
export const COMMANDS_CHANNEL = "maqet_commands";
/**
 * Wakes callers; the payload is the finished command's id, followed by a space and its outcome
 * as JSON when that fits in a NOTIFY (then the caller needs no read).
 */
export const COMMAND_DONE_CHANNEL = "maqet_command_done";
/** Progress of a running command, for its caller: the payload is `<id> <progress as JSON>`. */
export const COMMAND_PROGRESS_CHANNEL = "maqet_command_progress";
/** NOTIFY payloads stop short of 8000 bytes; a progress value longer than this is not sent. */
const MAX_PAYLOAD_BYTES = 7900;

export interface NewCommand {
  vmId: string;
  host: string;
  /** The facade method to run (`start`, `stop`, `qmp`...). */
  method: string;
  /** Its arguments, JSON. */
  args: unknown[];
  /** Who asked (the caller identity the owner acts as). */
  caller: Record<string, unknown>;
  /** Safe to run again after an agent died mid-way (start, stop, status...). */
  idempotent: boolean;
}

/**
 * Where a VM is, as one statement read it: its id and name, and its owner when it is placed (the
 * host, the owner epoch, and that host's state by the database's clock).
 */
export interface VmLocation {
  vmId: string;
  name: string;
  owner?: { host: string; epoch: number; state: HostState | "unknown"; lastRenewal?: string };
}

/** A command for a VM known by its name (or id): the statement finds the id and puts it first in `args`. */
export interface NewCommandByName extends Omit<NewCommand, "vmId" | "host"> {
  nameOrId: string;
}

export interface ClaimedCommand extends NewCommand {
  id: string;
  attempts: number;
  /** The VM's name and placement, read by the claim itself (absent: no live VM has that id). */
  located?: VmLocation;
  /**
   * Whether the claim saw another command of this host that it could claim now (another VM's,
   * none of that VM's running): then claim again at once; otherwise a new one's NOTIFY wakes you.
   */
  more?: boolean;
}

/** A command's outcome, once it has one. */
export type CommandOutcome =
  | { state: "done"; result: unknown }
  | { state: "failed"; error: { code: string; message: string; details?: Record<string, unknown> } };

interface CommandRow extends LocationColumns {
  more?: boolean;
  id: string;
  vm_id: string;
  host: string;
  method: string;
  args: unknown[] | string;
  caller: Record<string, unknown> | string;
  idempotent: boolean;
  attempts: number;
}

/** The columns {@link LOCATE_COLUMNS} reads (null where the VM has no name, placement or host row). */
interface LocationColumns {
  vm_name: string | null;
  owner: string | null;
  owner_epoch: string | number | null;
  owner_state: HostState | null;
  owner_renewed_at: Date | string | null;
}

/** The VM's name, owner, owner epoch and the owner's state, for a query joining `n` (maqet_vm_names), `p` and `h`. */
const LOCATE_COLUMNS = `n.name as vm_name, p.host as owner, p.epoch as owner_epoch,
       case when h.name is not null then ${HOST_STATE_SQL} end as owner_state, h.renewed_at as owner_renewed_at`;

function location(vmId: string, row: LocationColumns): VmLocation | undefined {
  if (row.vm_name === null) return undefined;
  if (row.owner === null) return { vmId, name: row.vm_name };
  return {
    vmId,
    name: row.vm_name,
    owner: {
      host: row.owner,
      epoch: Number(row.owner_epoch),
      state: row.owner_state ?? "unknown",
      ...(row.owner_renewed_at === null ? {} : { lastRenewal: new Date(row.owner_renewed_at).toISOString() }),
    },
  };
}

/** Bytes of a NOTIFY payload (its limit is in bytes). */
const payloadBytes = (payload: string): number => new TextEncoder().encode(payload).length;

const json = <T>(value: T | string): T => (typeof value === "string" ? (JSON.parse(value) as T) : value);

const claimedCommand = (row: CommandRow): ClaimedCommand => ({
  id: row.id,
  vmId: row.vm_id,
  host: row.host,
  method: row.method,
  args: json(row.args),
  caller: json(row.caller),
  idempotent: row.idempotent,
  attempts: Number(row.attempts),
});

export class CommandQueue {
  constructor(private readonly db: Kysely<Database>) {}

  /** Queues a command for `host` and wakes its agent (after the insert committed). */
  async enqueue(command: NewCommand, id: string = crypto.randomUUID()): Promise<string> {
    // One statement, one round trip: NOTIFY is delivered at commit, so never before the row exists.
    await sql`${sql.raw(PREPARE_MARK)} with queued as (
                insert into maqet_commands (id, vm_id, host, method, args, caller, idempotent)
                values (${id}, ${command.vmId}, ${command.host}, ${command.method}, ${JSON.stringify(command.args)}::jsonb,
                        ${JSON.stringify(command.caller)}::jsonb, ${command.idempotent})
                returning host)
              select pg_notify(${COMMANDS_CHANNEL}, host) from queued`.execute(this.db);
    return id;
  }

  /**
   * The caller's side of routing in one statement, one round trip: finds the VM by name (or id),
   * its owner and the owner's state, and, when the owner is another host than `self` and up,
   * queues the command there with the VM id first in its arguments and wakes that host's agent
   * (NOTIFY, delivered at commit). `location` is undefined when no live VM has that name or id;
   * `queued` false when the VM is this host's, not placed, or its owner is not up (then the caller
   * runs it here, or says why it cannot).
   */
  async enqueueByName(
    self: string,
    command: NewCommandByName,
    id: string = crypto.randomUUID(),
  ): Promise<{ location: VmLocation | undefined; queued: boolean }> {
    const { nameOrId } = command;
    const { rows } = await sql<LocationColumns & { vm_id: string; queued: number }>`${sql.raw(PREPARE_MARK)}
      with target as (
        select n.vm_id, ${sql.raw(LOCATE_COLUMNS)}
          from maqet_vm_names n
          left join maqet_placements p on p.stream_id = n.stream_id
          left join maqet_hosts h on h.name = p.host
         where n.name = ${nameOrId} or n.stream_id = ${vmStreamId(nameOrId)}
         order by (n.name = ${nameOrId}) desc
         limit 1),
      queued as (
        insert into maqet_commands (id, vm_id, host, method, args, caller, idempotent)
        select ${id}, t.vm_id, t.owner, ${command.method}, jsonb_build_array(t.vm_id) || ${JSON.stringify(command.args)}::jsonb,
               ${JSON.stringify(command.caller)}::jsonb, ${command.idempotent}
          from target t
         where t.owner <> ${self} and t.owner_state = 'up'
        returning host),
      notified as (select pg_notify(${COMMANDS_CHANNEL}, host) from queued)
      select t.*, (select count(*) from notified)::int as queued from target t`.execute(this.db);
    const row = rows[0];
    if (row === undefined) return { location: undefined, queued: false };
    return { location: location(row.vm_id, row), queued: Number(row.queued) > 0 };
  }

  /**
   * Claims the oldest queued command of `host` whose VM has no command running, under the host's
   * `term`; undefined when there is none. The same statement reads where the command's VM is
   * now ({@link ClaimedCommand.located}): its owner needs no lookup of its own before running it.
   */
  async claim(host: string, term: number): Promise<ClaimedCommand | undefined> {
    try {
      const { rows } = await sql<CommandRow>`${sql.raw(PREPARE_MARK)}
        with claimed as (
          update maqet_commands c set state = 'running', claimed_by = ${host}, claimed_term = ${term},
                 claimed_at = clock_timestamp(), attempts = c.attempts + 1
           where c.id = (select q.id from maqet_commands q
                          where q.host = ${host} and q.state = 'queued'
                            and not exists (select from maqet_commands r where r.vm_id = q.vm_id and r.state = 'running')
                          order by q.created_at
                          limit 1
                          for update skip locked)
          returning c.id, c.vm_id, c.host, c.method, c.args, c.caller, c.idempotent, c.attempts)
        select c.*, ${sql.raw(LOCATE_COLUMNS)},
               exists (select from maqet_commands q
                        where q.host = ${host} and q.state = 'queued' and q.vm_id <> c.vm_id
                          and not exists (select from maqet_commands r where r.vm_id = q.vm_id and r.state = 'running')) as more
          from claimed c
          left join maqet_vm_names n on n.stream_id = 'vm-' || c.vm_id
          left join maqet_placements p on p.stream_id = 'vm-' || c.vm_id
          left join maqet_hosts h on h.name = p.host`.execute(this.db);
      const row = rows[0];
      if (row === undefined) return undefined;
      const located = location(row.vm_id, row);
      return { ...(located ? { located } : {}), more: row.more === true, ...claimedCommand(row) };
    } catch (error) {
      // Another claimer took a command of the same VM in the same instant: try again later.
      if ((error as { code?: unknown }).code === "23505") return undefined;
      throw error;
    }
  }

  /**
   * The commands claimed under `host`'s `term` and still running: after a claim whose answer was
   * lost (the server went away after the claim committed), the claimer finds it here, ran by
   * nobody; left alone, it stayed running for good under a live incarnation, which no rescue or
   * sweep touches, and its VM's later commands queued behind it.
   */
  async claimedBy(host: string, term: number): Promise<ClaimedCommand[]> {
    const { rows } = await sql<CommandRow>`
      select id, vm_id, host, method, args, caller, idempotent, attempts from maqet_commands
       where claimed_by = ${host} and claimed_term = ${term} and state = 'running'
       order by claimed_at`.execute(this.db);
    return rows.map(claimedCommand);
  }

  /**
   * Writes the outcome under the claim and wakes the caller (one statement: both or neither, so
   * a caller may retry it after a connection error); false when the claim was lost. The wake-up
   * carries the outcome when it fits ({@link COMMAND_DONE_CHANNEL}): the caller reads nothing.
   */
  async finish(id: string, host: string, term: number, outcome: CommandOutcome): Promise<boolean> {
    return (await this.complete(id, host, term, outcome)).finished;
  }

  /**
   * {@link finish}, also saying whether a queued command of the same VM for this host waits
   * (it could not be claimed while this one ran: claim again now).
   */
  async complete(
    id: string,
    host: string,
    term: number,
    outcome: CommandOutcome,
  ): Promise<{ finished: boolean; waiting: boolean }> {
    const carried = `${id} ${JSON.stringify(
      outcome.state === "done" ? { state: "done", result: outcome.result ?? null } : outcome,
    )}`;
    const payload = payloadBytes(carried) <= MAX_PAYLOAD_BYTES ? carried : id;
    const { rows } = await sql<{ waiting: boolean }>`${sql.raw(PREPARE_MARK)}
      with finished as (
        update maqet_commands set state = ${outcome.state}, finished_at = clock_timestamp(),
               result = ${outcome.state === "done" ? JSON.stringify(outcome.result ?? null) : null}::jsonb,
               error = ${outcome.state === "failed" ? JSON.stringify(outcome.error) : null}::jsonb
         where id = ${id} and claimed_by = ${host} and claimed_term = ${term} and state = 'running'
        returning id, vm_id)
      select id, pg_notify(${COMMAND_DONE_CHANNEL}, ${payload}),
             exists (select from maqet_commands q where q.vm_id = f.vm_id and q.host = ${host} and q.state = 'queued') as waiting
        from finished f`.execute(this.db);
    return { finished: rows.length > 0, waiting: rows[0]?.waiting === true };
  }

  /**
   * Sends one progress value of a running command to its caller (a NOTIFY only: nothing is
   * stored; a caller not listening at that moment misses it, as a local one would).
   */
  async progress(id: string, value: unknown): Promise<void> {
    const payload = `${id} ${JSON.stringify(value)}`;
    if (payloadBytes(payload) > MAX_PAYLOAD_BYTES) return;
    await sql`select pg_notify(${COMMAND_PROGRESS_CHANNEL}, ${payload})`.execute(this.db);
  }

  /**
   * The outcome a {@link COMMAND_DONE_CHANNEL} payload says command `id` has: `"read"` when the
   * payload names it without its outcome (read it), undefined when it is about another command.
   */
  static outcomeIn(id: string, payload: string): CommandOutcome | "read" | undefined {
    if (payload === id) return "read";
    if (!payload.startsWith(`${id} `)) return undefined;
    try {
      const carried = JSON.parse(payload.slice(id.length + 1)) as CommandOutcome;
      return carried.state === "done" || carried.state === "failed" ? carried : "read";
    } catch {
      return "read";
    }
  }

  /** The outcome of a command, or undefined while it is queued or running. */
  async outcome(id: string): Promise<CommandOutcome | undefined> {
    const { rows } = await sql<{ state: string; result: unknown; error: unknown }>`${sql.raw(PREPARE_MARK)}
      select state, result, error from maqet_commands where id = ${id}`.execute(this.db);
    const row = rows[0];
    if (row === undefined) {
      return { state: "failed", error: { code: "INTERNAL", message: `Routed command ${id} vanished.` } };
    }
    if (row.state === "done") return { state: "done", result: json(row.result) };
    if (row.state === "failed") return { state: "failed", error: json(row.error as string) as never };
    return undefined;
  }

  /**
   * At a (re-)join under `term`: commands this host's earlier incarnations claimed and never
   * finished. Idempotent ones are queued again, the others failed (they may have half-run).
   */
  async rescue(host: string, term: number): Promise<{ requeued: number; failed: number }> {
    const requeued = await sql`
      update maqet_commands set state = 'queued', claimed_by = null, claimed_term = null, claimed_at = null
       where host = ${host} and state = 'running' and claimed_term < ${term} and idempotent
      returning id`.execute(this.db);
    const failed = await this.#failWhere(
      sql`host = ${host} and state = 'running' and claimed_term < ${term} and not idempotent`,
      {
        code: "HOST_LEASE_LOST",
        message: `The agent of host '${host}' died while running this command; it is not safe to run again, so it was not. Check the VM's history (\`maqet history VM\`) for what it did.`,
      },
    );
    return { requeued: requeued.rows.length, failed };
  }

  /**
   * Orphaned claims, found by any member: commands `running` under an incarnation that is over
   * for certain (its host re-joined under a newer term, was fenced, left, or is gone), whose
   * outcome will never come. Idempotent ones are queued again, for the VM's owner now (an HA
   * recovery may have moved it); the others fail (they may have half-run). A live incarnation's
   * claim is never touched: one merely late (frozen, partitioned, not yet fenced) may still finish
   * it, and a command is never run twice.
   */
  async sweepOrphans(): Promise<{ requeued: number; failed: number }> {
    const over = sql`state = 'running' and not exists (
        select from maqet_hosts h
         where h.name = maqet_commands.claimed_by and h.term = maqet_commands.claimed_term
           and h.fenced_at is null and h.left_at is null)`;
    const requeued = await sql`
      update maqet_commands set state = 'queued', claimed_by = null, claimed_term = null, claimed_at = null,
             host = coalesce((select p.host from maqet_placements p where p.vm_id = maqet_commands.vm_id), host)
       where ${over} and idempotent
      returning id, host`.execute(this.db);
    for (const row of requeued.rows as Array<{ host: string }>) {
      await sql`select pg_notify(${COMMANDS_CHANNEL}, ${row.host})`.execute(this.db);
    }
    const failed = await this.#failWhere(sql`${over} and not idempotent`, {
      code: "HOST_LEASE_LOST",
      message:
        "The agent that was running this command is gone (its host re-joined, was fenced or left) and never said how it ended; it is not safe to run again, so it was not. Check the VM's history (`maqet history VM`) for what it did.",
    });
    return { requeued: requeued.rows.length, failed };
  }

  /**
   * The host was fenced or left: every command queued for it fails (those it was running are
   * {@link sweepOrphans}'s: re-queued or failed by rule).
   */
  async failHost(host: string, why: string): Promise<number> {
    return this.#failWhere(sql`host = ${host} and state = 'queued'`, {
      code: "HOST_LEASE_LOST",
      message: `Host '${host}' ${why}; the command did not run there (or not to its end). See \`maqet host ls\`.`,
    });
  }

  /** Forgets finished commands older than `olderThanMs` (their facts stay in the VMs' streams). */
  async prune(olderThanMs: number): Promise<number> {
    const { rows } = await sql<{ id: string }>`
      delete from maqet_commands
       where finished_at is not null and finished_at < clock_timestamp() - make_interval(secs => ${olderThanMs / 1000})
      returning id`.execute(this.db);
    return rows.length;
  }

  async #failWhere(where: ReturnType<typeof sql>, error: { code: string; message: string }): Promise<number> {
    const { rows } = await sql<{ id: string }>`
      update maqet_commands set state = 'failed', finished_at = clock_timestamp(), error = ${JSON.stringify(error)}::jsonb
       where ${where} returning id`.execute(this.db);
    for (const row of rows) await sql`select pg_notify(${COMMAND_DONE_CHANNEL}, ${row.id})`.execute(this.db);
    return rows.length;
  }
}
