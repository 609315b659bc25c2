/**
 * How the agent answers a failure: the body `{"error": {"code", "message", "exitCode", "details"}}`
 * (the code and exit code the CLI would print, so a thin client exits the same way) and an HTTP
 * status that fits the code.
 *
 * @example
 * ```ts
 * const { status, body } = errorResponse(new MaqetError("VM_NOT_FOUND", "VM 'x' not found."));
 * // status 404, body.error.exitCode 3
 * ```
 */
import type { ErrorCode } from "../errors/error-codes.ts";
import { isMaqetError } from "../errors/maqet-error.ts";

/** The JSON error body of every failed request. */
export interface ErrorBody {
  error: { code: string; message: string; exitCode: number; details?: Record<string, unknown> };
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  VM_NOT_FOUND: 404,
  CONFIG_NOT_FOUND: 404,
  PATH_NOT_FOUND: 404,
  DRIVE_NOT_FOUND: 404,
  SNAPSHOT_NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  VM_EXISTS: 409,
  SNAPSHOT_EXISTS: 409,
  VM_BUSY: 409,
  CONSOLE_BUSY: 409,
  VM_INVALID_STATE: 409,
  CONCURRENCY_CONFLICT: 409,
  HOST_NOT_FOUND: 404,
  HOST_INVALID_STATE: 409,
  STALE_EPOCH: 409,
  NO_HOST_AVAILABLE: 409,
  HOST_LEASE_LOST: 503,
  REQUEST_TOO_LARGE: 413,
  UNAUTHORIZED: 401,
  STORE_LOCKED: 503,
  AGENT_UNAVAILABLE: 503,
};

/** HTTP status for an error code: 400 for other invalid input, 403 refused, 504 timeouts, else 500. */
export function httpStatusOf(code: ErrorCode, exitCode: number): number {
  const fixed = STATUS[code];
  if (fixed !== undefined) return fixed;
  if (exitCode === 3) return 400;
  if (exitCode === 4) return 403;
  if (exitCode === 2) return 504;
  return 500;
}

/** The status and body for any thrown value (a non-maqet error is INTERNAL, 500). */
export function errorResponse(error: unknown): { status: number; body: ErrorBody } {
  if (isMaqetError(error)) {
    const status = error.code === "ROUTE_NOT_FOUND" && Array.isArray(error.details.allowed) ? 405 : undefined;
    const details = Object.keys(error.details).length ? { details: error.details } : {};
    return {
      status: status ?? httpStatusOf(error.code, error.exitCode),
      body: { error: { code: error.code, message: error.message, exitCode: error.exitCode, ...details } },
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    status: 500,
    body: { error: { code: "INTERNAL", message: `Internal error in the agent: ${message}`, exitCode: 1 } },
  };
}
