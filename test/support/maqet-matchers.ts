/**
 * `toBeMaqetError(code, details?)`: a vitest matcher for maqet's errors that, when it fails, says
 * what was thrown instead (its name, code, message and details) — not "expected false to be
 * true". Registered for every test by vitest.config.ts (setupFiles).
 *
 * @example
 * ```ts
 * await expect(maqet.start("nope")).rejects.toBeMaqetError("VM_NOT_FOUND");
 * expect(error).toBeMaqetError("CONCURRENCY_CONFLICT", { expected: 0 });
 * ```
 */
import { inspect } from "node:util";
import { expect } from "vitest";
import type { ErrorCode } from "../../src/errors/error-codes.ts";
import { isMaqetError } from "../../src/errors/maqet-error.ts";

interface MaqetErrorMatchers<R = unknown> {
  /** A MaqetError with this code and, when given, details containing these fields (subset match). */
  toBeMaqetError(code: ErrorCode, details?: Record<string, unknown>): R;
}

declare module "vitest" {
  // biome-ignore lint/suspicious/noExplicitAny: the declaration merges with vitest's own Matchers<T = any>
  interface Matchers<T = any> extends MaqetErrorMatchers<T> {}
}

/**
 * What a value is, for a failure message: an error's name, code, message and details, or the
 * value itself.
 *
 * @example
 * ```ts
 * describeThrown(new MaqetError("VM_BUSY", "busy")); // "MaqetError VM_BUSY: busy {}"
 * ```
 */
export function describeThrown(value: unknown): string {
  if (value instanceof Error || (typeof value === "object" && value !== null && "message" in value)) {
    const e = value as { name?: string; code?: unknown; message?: string; details?: unknown };
    const code = e.code === undefined ? "" : ` ${String(e.code)}`;
    const details = e.details === undefined ? "" : ` ${inspect(e.details, { depth: 4, breakLength: Infinity })}`;
    return `${e.name ?? "Error"}${code}: ${e.message}${details}`;
  }
  return inspect(value, { depth: 4, breakLength: Infinity });
}

expect.extend({
  toBeMaqetError(received: unknown, code: ErrorCode, details?: Record<string, unknown>) {
    const { equals, isNot } = this;
    const codeOk = isMaqetError(received, code);
    const detailsOk =
      details === undefined || (isMaqetError(received) && equals(received.details, expect.objectContaining(details)));
    const pass = codeOk && detailsOk;
    const wanted = `MaqetError ${code}${details ? ` with details ${inspect(details, { breakLength: Infinity })}` : ""}`;
    return {
      pass,
      message: () =>
        isNot
          ? `expected not to be ${wanted}, but it was: ${describeThrown(received)}`
          : `expected ${wanted}, got ${describeThrown(received)}`,
      actual: isMaqetError(received) ? { code: received.code, details: received.details } : received,
      expected: { code, ...(details ? { details } : {}) },
    };
  },
});
