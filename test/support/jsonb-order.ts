/**
 * What PostgreSQL `jsonb` does to a JSON value's objects, for unit tests without a database:
 * every object's keys sorted shortest first, then bytewise (the int tests use the real thing).
 *
 * @example
 * ```ts
 * jsonbRoundTrip({ netdev: "user", id: "n0" }); // { id: "n0", netdev: "user" }
 * ```
 */
export function jsonbRoundTrip(value: unknown): unknown {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v === null || typeof v !== "object") return v;
    const keys = Object.keys(v).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
    return Object.fromEntries(keys.map((k) => [k, sort((v as Record<string, unknown>)[k])]));
  };
  return sort(JSON.parse(JSON.stringify(value)));
}
