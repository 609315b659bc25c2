/**
 * The fencing token refused an append: the event carried an owner epoch that is not the VM's
 * current one (migrations/0009-hosts.ts raises SQLSTATE `MQ409` inside the append's transaction;
 * nothing of the append was written). The writer lost the VM to another host (or to a newer
 * placement) and must not touch it again.
 *
 * @example
 * ```ts
 * if (isStaleEpochViolation(error)) throw staleEpochError(error);
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";

/** The SQLSTATE `maqet_check_epoch()` raises. */
export const STALE_EPOCH_STATE = "MQ409";

/** True for the database error the epoch check raises (pg and PGlite both carry `code`). */
export function isStaleEpochViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === STALE_EPOCH_STATE;
}

/**
 * The typed error: `STALE_EPOCH`, details `{streamId, epoch, currentEpoch, owner}` from the check.
 *
 * @example
 * ```ts
 * throw staleEpochError(dbError);
 * ```
 */
export function staleEpochError(cause: unknown): MaqetError {
  let details: Record<string, unknown> = {};
  try {
    details = JSON.parse(String((cause as { detail?: unknown }).detail ?? "{}")) as Record<string, unknown>;
  } catch {
    // Keep the message: the detail is informative only.
  }
  const stream = String(details.streamId ?? "?");
  return new MaqetError(
    "STALE_EPOCH",
    `Append to stream '${stream}' refused: this writer holds owner epoch ${String(details.epoch ?? "?")}, ` +
      `but the VM is now at epoch ${String(details.currentEpoch ?? "?")} (owner: ${String(details.owner ?? "none")}). ` +
      "The VM was placed elsewhere (or this host was fenced); this host must not touch it again. " +
      "See `maqet host ls` and docs/cluster.md.",
    { cause, details },
  );
}
