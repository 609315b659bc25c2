import { isMaqetError, type MaqetError } from "../../src/errors/maqet-error.ts";

/**
 * The rejection of a promise, to assert on (`expect(await failure(p)).toBeMaqetError(...)`, or
 * its details); throws when the promise resolves instead, so a call that should have failed and
 * did not fails the test.
 *
 * @example
 * ```ts
 * const error = await failure(store.append("vm-1", [event("x")], { expectedVersion: 5 }));
 * expect(error).toBeMaqetError("CONCURRENCY_CONFLICT", { expected: 5 });
 * ```
 */
export async function failure(promise: Promise<unknown>): Promise<unknown> {
  let value: unknown;
  try {
    value = await promise;
  } catch (error) {
    return error;
  }
  throw new Error(`expected a rejection, got a result: ${JSON.stringify(value)?.slice(0, 500)}`);
}

/**
 * The MaqetError a synchronous call throws; fails the test when it throws nothing, and rethrows
 * anything that is not a MaqetError (so the real error shows).
 *
 * @example
 * ```ts
 * expect(errorOf(() => parseVmConfig("memory: lots", options)).code).toBe("CONFIG_INVALID");
 * ```
 */
export function errorOf(fn: () => unknown): MaqetError {
  try {
    fn();
  } catch (e) {
    if (isMaqetError(e)) return e;
    throw e;
  }
  throw new Error("expected a MaqetError");
}
