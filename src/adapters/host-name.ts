/**
 * The name a host takes in a cluster when `--host` is not given: the machine's short host name.
 *
 * @example
 * ```ts
 * const host = args.host ?? defaultHostName(); // "lab1" on lab1.example.org
 * ```
 */
import { hostname } from "node:os";

/** The default host name: the machine's (its first label), or `localhost` when it has none. */
export function defaultHostName(): string {
  return hostname().split(".")[0] || "localhost";
}
