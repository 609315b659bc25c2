/**
 * Text output of `maqet migrate`: the store's schema migrations, or a VM's live migration.
 *
 * @example
 * ```ts
 * STORE_RENDERERS.migrate({ applied: [] }); // "The store is up to date."
 * ```
 */
import type { MigrationResult } from "../../actors/migration/migrate-out.ts";
import type { Renderer } from "./renderer.ts";

export const STORE_RENDERERS: Record<string, Renderer> = {
  migrate: (result) => {
    if ((result as { cancelled?: boolean }).cancelled === true) {
      const c = result as { vm: string; migrationId: string };
      return `Cancelling the migration of VM '${c.vm}' (${c.migrationId}); it stays on its source.`;
    }
    if (typeof (result as { migrationId?: unknown }).migrationId === "string") {
      const m = result as MigrationResult;
      return (
        `Migrated VM '${m.vm}' ${m.fromHost === m.toHost ? `to a fresh QEMU on '${m.toHost}'` : `from '${m.fromHost}' to '${m.toHost}'`} ` +
        `(pid ${m.pid}): downtime ${m.downtimeMs} ms, total ${m.totalMs} ms, ${(m.transferredBytes / 1048576).toFixed(1)} MiB in ${m.passes} pass(es).` +
        (m.resumed
          ? ""
          : " The guest was not resumed here: it was paused before, or the destination resumes it when it next loads the VM.")
      );
    }
    const applied = (result as { applied: string[] }).applied;
    return applied.length ? `Applied migrations: ${applied.join(", ")}.` : "The store is up to date.";
  },
};
