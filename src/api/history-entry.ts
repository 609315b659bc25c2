/**
 * One line of a VM's history: a stored event flattened for `history` (table or `--json`).
 *
 * @example
 * ```ts
 * (await maqet.history("web")).map((h) => h.type); // ["vm.defined", "vm.start-requested", …]
 * ```
 */
import type { StoredEvent } from "../events/envelope.ts";

export interface HistoryEntry {
  version: number;
  position: number;
  type: string;
  schemaVersion: number;
  at: string;
  id: string;
  data: unknown;
  actor: { user: string; uid: number; host: string; pid: number } | null;
  correlationId: string | null;
  source: string | null;
}

export function toHistoryEntry(event: StoredEvent): HistoryEntry {
  return {
    version: event.streamVersion,
    position: event.globalPosition,
    type: event.type,
    schemaVersion: event.schemaVersion,
    at: event.recordedAt.toISOString(),
    id: event.id,
    data: event.data,
    actor: event.metadata?.actor ?? null,
    correlationId: event.metadata?.correlationId ?? null,
    source: event.metadata?.source ?? null,
  };
}
