/**
 * A JSON value as PostgreSQL's `jsonb` gives it back: every object's keys in jsonb's order —
 * shorter keys first (length in UTF-8 bytes), then bytewise — and duplicate keys last-wins. The
 * embedded store hands its own appends to live subscriptions without reading them back
 * (postgres-event-store.ts); this keeps what they see identical to what a reader of the same
 * event gets from the database, key order included.
 *
 * @example
 * ```ts
 * Object.keys(asJsonb({ bb: 1, a: 2, c: 3 }) as object); // ["a", "c", "bb"]
 * ```
 */

const utf8 = new TextEncoder();

/**
 * Orders two object keys as jsonb stores them: by UTF-8 length, then byte by byte.
 *
 * @example
 * ```ts
 * ["é", "ab", "b"].sort(compareJsonbKeys); // ["b", "ab", "é"]
 * ```
 */
export function compareJsonbKeys(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  if (x.length !== y.length) return x.length - y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/**
 * The value jsonb would give back for `value` sent as JSON (`null` for undefined).
 *
 * @example
 * ```ts
 * asJsonb({ b: 1, aa: 2, a: 3 }); // { a: 3, b: 1, aa: 2 }
 * ```
 */
export function asJsonb(value: unknown): unknown {
  return ordered(JSON.parse(JSON.stringify(value ?? null)));
}

function ordered(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(ordered);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value).sort(compareJsonbKeys)) {
    // defineProperty: a "__proto__" key is data here, as it is for JSON.parse.
    Object.defineProperty(out, k, {
      value: ordered((value as Record<string, unknown>)[k]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
