/**
 * Matches a request's method and path against routes (compiled once) — the command routes, or the
 * library routes (library-routes.ts): the route and
 * its decoded path parameters, "method not allowed" with the methods the path has, or nothing.
 *
 * @example
 * ```ts
 * const table = compileRoutes(COMMAND_ROUTES);
 * table.match("POST", "/v1/vms/web/start"); // { route: start, params: { vm: "web" } }
 * ```
 */
import type { CommandRoute } from "../api/command-routes.ts";
import { MaqetError } from "../errors/maqet-error.ts";

/** What a route table needs of a route: its method and its `:name` path template. */
export interface RouteShape {
  readonly method: string;
  readonly path: string;
}

export type RouteMatch<R extends RouteShape = CommandRoute> =
  | { kind: "found"; route: R; params: Record<string, string> }
  | { kind: "method"; allowed: string[] }
  | { kind: "none" };

interface Compiled<R> {
  route: R;
  pattern: RegExp;
  names: string[];
}

export interface RouteTable<R extends RouteShape = CommandRoute> {
  match(method: string, path: string): RouteMatch<R>;
}

export function compileRoutes<R extends RouteShape = CommandRoute>(routes: readonly R[]): RouteTable<R> {
  const compiled: Compiled<R>[] = routes.map((route) => {
    const names: string[] = [];
    const source = route.path
      .split("/")
      .map((segment) => {
        if (!segment.startsWith(":")) return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
        names.push(segment.slice(1));
        return "([^/]+)";
      })
      .join("/");
    return { route, pattern: new RegExp(`^${source}$`), names };
  });
  return {
    match(method, path) {
      const allowed: string[] = [];
      for (const c of compiled) {
        const m = c.pattern.exec(path);
        if (!m) continue;
        if (c.route.method !== method) {
          allowed.push(c.route.method);
          continue;
        }
        const params: Record<string, string> = {};
        c.names.forEach((name, i) => {
          params[name] = decode(m[i + 1]!);
        });
        return { kind: "found", route: c.route, params };
      }
      return allowed.length ? { kind: "method", allowed } : { kind: "none" };
    },
  };
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new MaqetError("INVALID_ARGUMENT", `Invalid request path: '${segment}' is not valid percent-encoding.`);
  }
}
