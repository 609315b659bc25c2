/**
 * The agent's routes for library methods that have no CLI command of their own (so no route
 * derived from the registry): a VM stream's replay, what holds event delivery back, and a VM's
 * config as YAML text, read and replaced (`maqet edit` through the agent uses the last two).
 * Each checks its query or body like a command route (unknown fields refused) and runs on the
 * caller's view of the instance.
 *
 * | route | method |
 * |---|---|
 * | `GET /v1/vms/:vm/replay?until=&version=` | `replay()`: every step, one JSON array |
 * | `GET /v1/events/hold` | `deliveryHold()` |
 * | `GET /v1/vms/:vm/config` | `configYaml()`: `{"vm", "yaml"}` |
 * | `PUT /v1/vms/:vm/config` | `replaceConfig()`: body `{"yaml", "restart"?, "timeout"?, "reason"?, "baseDir"?, "via"?}` |
 *
 * @example
 * ```ts
 * const table = compileRoutes(LIBRARY_ROUTES);
 * const m = table.match("GET", "/v1/vms/web/config");
 * if (m.kind === "found") sendJson(res, 200, await m.route.run({ maqet, params: m.params, query, body: () => readJsonBody(req, limit) }));
 * ```
 */
import { lastValueFrom, toArray } from "rxjs";
import type { Maqet } from "../api/maqet.ts";
import { MaqetError } from "../errors/maqet-error.ts";

export interface LibraryCall {
  maqet: Maqet;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Reads the JSON body (with the agent's size limit); only a PUT route calls it. */
  body: () => Promise<Record<string, unknown>>;
}

export interface LibraryRoute {
  method: "GET" | "PUT";
  path: string;
  /** The library method it runs, for the request log (`command`). */
  operation: string;
  run(call: LibraryCall): Promise<unknown>;
}

export const LIBRARY_ROUTES: readonly LibraryRoute[] = [
  {
    method: "GET",
    path: "/v1/vms/:vm/replay",
    operation: "replay",
    run: async ({ maqet, params, query }) => {
      const route = "GET /v1/vms/:vm/replay (replay)";
      fieldsOnly(query, ["until", "version"], route);
      const until = query.get("until");
      const version = query.get("version");
      const at = until === null ? undefined : new Date(until);
      if (at !== undefined && Number.isNaN(at.getTime())) {
        throw bad(
          route,
          `'until' must be an ISO 8601 time such as 2026-11-22T10:15:00Z (got ${JSON.stringify(until)})`,
        );
      }
      if (version !== null && !/^\d+$/.test(version)) {
        throw bad(route, `'version' must be a stream version, 0 or more (got ${JSON.stringify(version)})`);
      }
      const options = {
        ...(at === undefined ? {} : { until: at }),
        ...(version === null ? {} : { version: Number(version) }),
      };
      return lastValueFrom(maqet.replay(params.vm!, options).pipe(toArray()));
    },
  },
  {
    method: "GET",
    path: "/v1/events/hold",
    operation: "deliveryHold",
    run: ({ maqet, query }) => {
      fieldsOnly(query, [], "GET /v1/events/hold (deliveryHold)");
      return maqet.deliveryHold();
    },
  },
  {
    method: "GET",
    path: "/v1/vms/:vm/config",
    operation: "configYaml",
    run: async ({ maqet, params, query }) => {
      fieldsOnly(query, [], "GET /v1/vms/:vm/config (configYaml)");
      return { vm: params.vm, yaml: await maqet.configYaml(params.vm!) };
    },
  },
  {
    method: "PUT",
    path: "/v1/vms/:vm/config",
    operation: "replaceConfig",
    run: async ({ maqet, params, body }) => {
      const route = "PUT /v1/vms/:vm/config (replaceConfig)";
      const given = await body();
      for (const key of Object.keys(given)) {
        if (!["yaml", "restart", "timeout", "reason", "baseDir", "via"].includes(key)) {
          throw bad(route, `unknown field '${key}' (use yaml, restart, timeout, reason, baseDir, via)`);
        }
      }
      const { yaml, restart, timeout, reason, baseDir, via } = given;
      if (typeof yaml !== "string") throw bad(route, "'yaml' must be the config's YAML text");
      if (restart !== undefined && typeof restart !== "boolean") throw bad(route, "'restart' must be true or false");
      if (timeout !== undefined && (typeof timeout !== "number" || !(timeout > 0))) {
        throw bad(route, "'timeout' must be a number of seconds, more than 0");
      }
      if (reason !== undefined && typeof reason !== "string") throw bad(route, "'reason' must be a string");
      if (baseDir !== undefined && (typeof baseDir !== "string" || !baseDir.startsWith("/"))) {
        throw bad(route, "'baseDir' must be an absolute directory");
      }
      if (via !== undefined && via !== "edit" && via !== "library") throw bad(route, "'via' must be edit or library");
      return maqet.replaceConfig(params.vm!, yaml, {
        ...(restart === undefined ? {} : { restart }),
        ...(timeout === undefined ? {} : { stopTimeoutMs: Math.round((timeout as number) * 1000) }),
        ...(reason === undefined ? {} : { reason: reason as string }),
        ...(baseDir === undefined ? {} : { baseDir: baseDir as string }),
        ...(via === undefined ? {} : { via }),
      });
    },
  },
];

function fieldsOnly(query: URLSearchParams, known: string[], route: string): void {
  for (const key of query.keys()) {
    if (!known.includes(key)) {
      throw bad(route, `unknown field '${key}'${known.length ? ` (use ${known.join(", ")})` : " (it takes none)"}`);
    }
  }
  for (const key of known) if (query.getAll(key).length > 1) throw bad(route, `'${key}' is given more than once`);
}

function bad(route: string, problem: string): MaqetError {
  return new MaqetError(
    "INVALID_ARGUMENT",
    `Invalid request for ${route}: ${problem}. See docs/agent.md for its fields.`,
  );
}
