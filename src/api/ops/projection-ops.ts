/**
 * Projection operations of the facade: how far each read model (VM list, audit trail, snapshot
 * catalogue) is behind the store, and rebuilding one from position 0.
 *
 * @example
 * ```ts
 * for (const p of await maqet.projections()) console.log(p.name, p.status, p.eventsBehind);
 * await maqet.rebuildProjection("vms");
 * ```
 */
import { MaqetError } from "../../errors/maqet-error.ts";
import type { ProjectionLag } from "../../events/projections/projection-runner.ts";
import type { MaqetContext } from "../maqet-context.ts";
import type { Runtime } from "../runtime.ts";

/** One projection's health, JSON-stable (dates as ISO strings). Add fields, never rename. */
export interface ProjectionInfo {
  name: string;
  /** `running`, or `stalled` at `error.position`. */
  status: string;
  /** Global position of the last event applied (0: none). */
  position: number;
  /** Last committed event the projection reads. */
  headPosition: number;
  /** Committed events not applied yet (held back by an open transaction included). */
  eventsBehind: number;
  /** Age of the oldest of them in ms; 0 when caught up. */
  ageMs: number;
  oldestPendingAt: string | null;
  eventsApplied: number;
  /** Version of the code running now, and of the code that built the rows. */
  version: number;
  builtVersion: number;
  rebuiltAt: string | null;
  updatedAt: string;
  error: { message: string; position: number | null; at: string } | null;
}

export interface RebuildResult {
  name: string;
  /** Events replayed. */
  events: number;
  /** Transactions committed. */
  batches: number;
  position: number;
  durationMs: number;
}

export interface ProjectionOps {
  /** Every projection's checkpoint, lag and status. Empty with a custom `store` (no projections). */
  projections(): Promise<ProjectionInfo[]>;
  /** Empties a projection and replays every event from position 0 (e.g. `"vms"`). */
  rebuildProjection(name: string): Promise<RebuildResult>;
}

export function projectionOps(ctx: MaqetContext): ProjectionOps {
  return {
    projections: () =>
      ctx.operation(async (rt) => {
        const runner = rt.projections;
        if (!runner) return [];
        const out: ProjectionInfo[] = [];
        for (const name of runner.names) out.push(toInfo(await runner.lag(name)));
        return out;
      }),
    rebuildProjection: (name) =>
      ctx.operation(async (rt) => {
        const started = performance.now();
        const result = await runnerOf(rt).rebuild(name);
        return {
          name: result.name,
          events: result.events,
          batches: result.batches,
          position: result.position,
          durationMs: Math.round(performance.now() - started),
        };
      }),
  };
}

function runnerOf(rt: Runtime): NonNullable<Runtime["projections"]> {
  if (rt.projections) return rt.projections;
  throw new MaqetError(
    "INVALID_ARGUMENT",
    "This maqet has no projections: it was created with a custom `store`, so there is no database to keep them in. " +
      "Open it with `dataDir` or `databaseUrl` instead.",
  );
}

function toInfo(lag: ProjectionLag): ProjectionInfo {
  return {
    name: lag.name,
    status: lag.status,
    position: lag.position,
    headPosition: lag.headPosition,
    eventsBehind: lag.eventsBehind,
    ageMs: lag.ageMs,
    oldestPendingAt: lag.oldestPendingAt?.toISOString() ?? null,
    eventsApplied: lag.eventsApplied,
    version: lag.version,
    builtVersion: lag.builtVersion,
    rebuiltAt: lag.rebuiltAt?.toISOString() ?? null,
    updatedAt: lag.updatedAt.toISOString(),
    error: lag.error ? { ...lag.error, at: lag.error.at.toISOString() } : null,
  };
}
