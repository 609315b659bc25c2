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
import type { Database } from "./schema.ts";

/** Wakes the agent of the host named in the payload. */
export const COMMANDS_CHANNEL = "maqet_commands";
/** Wakes callers; the payload is the finished command's id. */
export const COMMAND_DONE_CHANNEL = "maqet_command_done";
/** Progress of a running command, for its caller: the payload is `<id> <progress as JSON>`. */
export const COMMAND_PROGRESS_CHANNEL = "maqet_command_progress";
/** NOTIFY payloads stop short of 8000 bytes; a progress value longer than this is not sent. */
const MAX_PROGRESS_PAYLOAD = 7900;

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

export interface ClaimedCommand extends NewCommand {
  id: string;
  attempts: number;
}

/** A command's outcome, once it has one. */
export type CommandOutcome =
  | { state: "done"; result: unknown }
  | { state: "failed"; error: { code: string; message: string; details?: Record<string, unknown> } };

interface CommandRow {
  id: string;
  vm_id: string;
  host: string;
  method: string;
  args: unknown[] | string;
  caller: Record<string, unknown> | string;
  idempotent: boolean;
  attempts: number;
}

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
    await sql`with queued as (
                insert into maqet_commands (id, vm_id, host, method, args, caller, idempotent)
                values (${id}, ${command.vmId}, ${command.host}, ${command.method}, ${JSON.stringify(command.args)}::jsonb,
                        ${JSON.stringify(command.caller)}::jsonb, ${command.idempotent})
                returning host)
              select pg_notify(${COMMANDS_CHANNEL}, host) from queued`.execute(this.db);
    return id;
  }

  /**
   * Claims the oldest queued command of `host` whose VM has no command running, under the host's
   * `term`; undefined when there is none.
   */
  async claim(host: string, term: number): Promise<ClaimedCommand | undefined> {
    try {
      const { rows } = await sql<CommandRow>`
        update maqet_commands c set state = 'running', claimed_by = ${host}, claimed_term = ${term},
               claimed_at = clock_timestamp(), attempts = c.attempts + 1
         where c.id = (select q.id from maqet_commands q
                        where q.host = ${host} and q.state = 'queued'
                          and not exists (select from maqet_commands r where r.vm_id = q.vm_id and r.state = 'running')
                        order by q.created_at
                        limit 1
                        for update skip locked)
        returning c.id, c.vm_id, c.host, c.method, c.args, c.caller, c.idempotent, c.attempts`.execute(this.db);
      const row = rows[0];
      return row === undefined ? undefined : claimedCommand(row);
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
   * a caller may retry it after a connection error); false when the claim was lost.
   */
  async finish(id: string, host: string, term: number, outcome: CommandOutcome): Promise<boolean> {
    const { rows } = await sql`
      with finished as (
        update maqet_commands set state = ${outcome.state}, finished_at = clock_timestamp(),
               result = ${outcome.state === "done" ? JSON.stringify(outcome.result ?? null) : null}::jsonb,
               error = ${outcome.state === "failed" ? JSON.stringify(outcome.error) : null}::jsonb
         where id = ${id} and claimed_by = ${host} and claimed_term = ${term} and state = 'running'
        returning id)
      select id, pg_notify(${COMMAND_DONE_CHANNEL}, id::text) from finished`.execute(this.db);
    return rows.length > 0;
  }

  /**
   * Sends one progress value of a running command to its caller (a NOTIFY only: nothing is
   * stored; a caller not listening at that moment misses it, as a local one would).
   */
  async progress(id: string, value: unknown): Promise<void> {
    const payload = `${id} ${JSON.stringify(value)}`;
    if (payload.length > MAX_PROGRESS_PAYLOAD) return;
    await sql`select pg_notify(${COMMAND_PROGRESS_CHANNEL}, ${payload})`.execute(this.db);
  }

  /** The outcome of a command, or undefined while it is queued or running. */
  async outcome(id: string): Promise<CommandOutcome | undefined> {
    const { rows } = await sql<{ state: string; result: unknown; error: unknown }>`
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
