/**
 * One error class for everything maqet reports, told apart by a stable string `code`.
 *
 * Messages follow "what failed: subject, value. How to fix it." so a CLI user can act on the
 * one line printed to stderr.
 *
 * @example
 * ```ts
 * try { await maqet.start("web"); }
 * catch (e) { if (isMaqetError(e, "VM_NOT_FOUND")) console.error(e.message); }
 * ```
 */
import { type ErrorCode, exitCodeOf } from "./error-codes.ts";

export interface MaqetErrorOptions {
  cause?: unknown;
  /** Structured facts about the failure (key path, pid, expected version...). */
  details?: Record<string, unknown>;
}

export class MaqetError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  /** Marker used by {@link isMaqetError}; survives copies across realms and bundles. */
  readonly isMaqetError = true;

  constructor(code: ErrorCode, message: string, options: MaqetErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MaqetError";
    this.code = code;
    this.details = options.details ?? {};
  }

  /** The CLI exit code documented for this error's code (docs/errors.md). */
  get exitCode(): number {
    return exitCodeOf(this.code);
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/**
 * True when `e` is a maqet error, and, when `code` is given, has that code.
 *
 * @example
 * ```ts
 * if (isMaqetError(err, "CONCURRENCY_CONFLICT")) retry();
 * ```
 */
export function isMaqetError(e: unknown, code?: ErrorCode): e is MaqetError {
  if (typeof e !== "object" || e === null) return false;
  const candidate = e as { isMaqetError?: unknown; code?: unknown };
  if (candidate.isMaqetError !== true) return false;
  return code === undefined || candidate.code === code;
}
