/**
 * The bearer token of the agent's TCP listener, compared in constant time: both sides are hashed
 * to SHA-256 first, so neither the token's length nor a matching prefix shows in the timing. The
 * token's file (read or generated) is src/adapters/token-file.ts.
 *
 * @example
 * ```ts
 * tokenMatches(req.headers.authorization, token); // true for "Bearer <token>"
 * ```
 */
import { createHash, timingSafeEqual } from "node:crypto";

/** True when the `Authorization` header carries the token (`Bearer <token>`). */
export function tokenMatches(header: string | undefined, token: string | undefined): boolean {
  if (token === undefined || token === "" || header === undefined) return false;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  const given = match?.[1] ?? "";
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(token).digest();
  return timingSafeEqual(a, b) && given.length > 0;
}
