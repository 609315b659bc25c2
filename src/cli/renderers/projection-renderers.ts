/**
 * Text output of `projections` (a table, then any stalled projection's error) and
 * `projections rebuild`.
 *
 * @example
 * ```ts
 * PROJECTION_RENDERERS.projections(await maqet.projections());
 * ```
 */
import type { ProjectionInfo, RebuildResult } from "../../api/ops/projection-ops.ts";
import { renderTable } from "../table.ts";
import type { Renderer } from "./renderer.ts";

export const PROJECTION_RENDERERS: Record<string, Renderer> = {
  projections: (result) => {
    const list = result as ProjectionInfo[];
    if (list.length === 0) return "No projections (this maqet uses a custom store).";
    const table = renderTable(
      ["NAME", "STATUS", "POSITION", "HEAD", "BEHIND", "AGE", "APPLIED", "VERSION", "UPDATED"],
      list.map((p) => [
        p.name,
        p.status,
        String(p.position),
        String(p.headPosition),
        String(p.eventsBehind),
        p.eventsBehind === 0 ? "-" : age(p.ageMs),
        String(p.eventsApplied),
        p.builtVersion === p.version ? String(p.version) : `${p.builtVersion} (code ${p.version})`,
        p.updatedAt.replace("T", " ").replace(/\.\d+Z$/, ""),
      ]),
    );
    const stalls = list
      .filter((p) => p.error)
      .map((p) => `${p.name} stopped at event ${p.error!.position ?? "?"}: ${p.error!.message}`);
    return [table, ...stalls].join("\n");
  },
  "projections rebuild": (result) => {
    const r = result as RebuildResult;
    return `Rebuilt '${r.name}': ${r.events} events in ${r.batches} batches, ${(r.durationMs / 1000).toFixed(1)} s; checkpoint ${r.position}.`;
  },
};

function age(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}
