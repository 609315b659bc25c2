/**
 * What PostgreSQL's `jsonb` makes of a JavaScript value, for the in-memory model of the event
 * store: the value as JSON sends it (undefined dropped, dates as strings, duplicate keys
 * last-wins), with every object's keys in jsonb's order — shorter keys first (length in UTF-8
 * bytes), then bytewise — and jsonb equality for comparing retries. Data jsonb refuses (a NUL
 * character, a lone surrogate) throws here rather than being stored as PostgreSQL never would.
 *
 * @example
 * ```ts
 * toJsonb({ b: 1, aa: 2, a: 3 }); // { a: 3, b: 1, aa: 2 }
 * jsonbEqual({ x: 1, y: 2 }, { y: 2, x: 1 }); // true
 * ```
 */

import { compareJsonbKeys } from "../../src/events/jsonb-order.ts";

export { compareJsonbKeys };

/**
 * The value jsonb would give back for `value` sent as JSON (`null` for undefined).
 *
 * @example
 * ```ts
 * Object.keys(toJsonb({ bb: 1, a: 2, c: 3 })); // ["a", "c", "bb"]
 * ```
 */
export function toJsonb(value: unknown): unknown {
  const text = JSON.stringify(value ?? null);
  // JSON.parse keeps the last of duplicate keys, as jsonb does.
  return normalise(JSON.parse(text), "$");
}

/**
 * jsonb equality: same values, key order ignored (arrays keep theirs).
 *
 * @example
 * ```ts
 * jsonbEqual([{ a: 1, b: 2 }], [{ b: 2, a: 1 }]); // true
 * ```
 */
export function jsonbEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(toJsonb(a)) === JSON.stringify(toJsonb(b));
}

function normalise(value: unknown, path: string): unknown {
  if (typeof value === "string") return checked(value, path);
  if (Array.isArray(value)) return value.map((v, i) => normalise(v, `${path}[${i}]`));
  if (value === null || typeof value !== "object") return value;
  // Built in jsonb's order; JavaScript then lists integer-like keys first, exactly as it does
  // for the object the real store's driver makes with JSON.parse from jsonb's text.
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value).sort(compareJsonbKeys)) {
    // defineProperty: a "__proto__" key is data here, as it is for JSON.parse.
    Object.defineProperty(out, checked(k, path), {
      value: normalise((value as Record<string, unknown>)[k], `${path}.${k}`),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function checked(text: string, path: string): string {
  if (text.includes("\u0000")) {
    throw new Error(`memory model: ${path} holds a NUL character, which PostgreSQL's jsonb refuses`);
  }
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text)) {
    throw new Error(`memory model: ${path} holds a lone surrogate, which PostgreSQL's jsonb refuses`);
  }
  return text;
}
