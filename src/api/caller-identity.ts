/**
 * Who asked for an operation, when that is not this process: the caller an agent (or any
 * embedding that serves several users) acts for. `maqet.as(caller)` stamps it on every event the
 * operation appends: `metadata.actor` (user, uid, pid, host: the fields given), `metadata.source`,
 * and the operation's correlation id (`caller.correlationId`, else a fresh one per operation).
 *
 * @example
 * ```ts
 * const alice = maqet.as({ user: "alice", uid: 1000, pid: 4242, host: "lab1", source: "agent" });
 * await alice.start("web"); // vm.start-requested, vm.started: actor alice, source agent, one correlation id
 * ```
 */
import type { EventMetadata } from "../events/envelope.ts";

/** The caller of an operation (a contract shared with the agent: fields are only ever added). */
export interface CallerIdentity {
  user?: string;
  uid?: number;
  pid?: number;
  host?: string;
  /** Which face it came through: `agent`, `cli`, `web`... Default: the instance's `source`. */
  source?: string;
  /** Used as the correlation id of every operation through this view, instead of a fresh one. */
  correlationId?: string;
  /** The event or request that caused the operations (recorded as `metadata.causationId`). */
  causationId?: string;
  /**
   * Set while a member runs a routed command it claimed (its id): the operation runs here or not
   * at all, never routed on (src/api/route-commands.ts).
   */
  routedCommand?: string;
}

/**
 * The metadata one operation stamps on its events. Without a caller, `metadata.actor` is left
 * to the store (this process's user); with one, it holds exactly the identity fields given.
 */
export function operationMetadata(caller: CallerIdentity | undefined, defaultSource: string): Partial<EventMetadata> {
  const metadata: Partial<EventMetadata> = {
    correlationId: caller?.correlationId ?? crypto.randomUUID(),
    source: caller?.source ?? defaultSource,
  };
  if (caller?.causationId !== undefined) metadata.causationId = caller.causationId;
  const actor: Record<string, unknown> = {};
  for (const key of ["user", "uid", "pid", "host"] as const) if (caller?.[key] !== undefined) actor[key] = caller[key];
  if (Object.keys(actor).length > 0) metadata.actor = actor as unknown as EventMetadata["actor"];
  return metadata;
}
