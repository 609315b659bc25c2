/**
 * The QMP vocabulary of a live migration (QEMU's qapi/migration.json), typed for what maqet
 * reads: capabilities, `query-migrate`, the run state.
 *
 * @example
 * ```ts
 * await enableMigrationEvents(session);
 * const info = await queryMigrate(session); // { status: "active", ram: { transferred, remaining, ... } }
 * ```
 */
import type { QmpSession } from "../ports.ts";

/** `query-migrate`'s answer, as far as maqet reads it. */
export interface MigrationInfo {
  status?: string;
  ram?: {
    transferred?: number;
    remaining?: number;
    total?: number;
    mbps?: number;
    "dirty-sync-count"?: number;
    "dirty-pages-rate"?: number;
  };
  "expected-downtime"?: number;
  downtime?: number;
  "total-time"?: number;
  "setup-time"?: number;
  "error-desc"?: string;
  "socket-address"?: Array<{ type: string; host?: string; port?: string | number; path?: string }>;
}

/**
 * `events` (MIGRATION and MIGRATION_PASS) and `pause-before-switchover` (stop at `pre-switchover`
 * so ownership moves before the guest runs anywhere else), on either side.
 */
export async function enableMigrationEvents(session: QmpSession): Promise<void> {
  await session.execute("migrate-set-capabilities", {
    capabilities: [
      { capability: "events", state: true },
      { capability: "pause-before-switchover", state: true },
    ],
  });
}

export function queryMigrate(session: QmpSession): Promise<MigrationInfo> {
  return session.execute<MigrationInfo>("query-migrate");
}

/** QEMU's run state (`running`, `paused`, `inmigrate`, `finish-migrate`, `postmigrate`, ...). */
export async function runState(session: QmpSession): Promise<string> {
  const status = await session.execute<{ status?: string }>("query-status");
  return String(status?.status ?? "unknown");
}

/** Whether the guest's vCPUs run (`query-status`); true when QEMU cannot say. */
export async function isGuestRunning(session: QmpSession): Promise<boolean> {
  const status = await session.execute<{ running?: boolean }>("query-status").catch(() => undefined);
  return status?.running !== false;
}
