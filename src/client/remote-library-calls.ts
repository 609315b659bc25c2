/**
 * The remote client's library methods that have no CLI command (src/agent/library-routes.ts
 * serves them): `replay` (one JSON array, emitted step by step), `deliveryHold` (its `since`
 * revived as a Date), `configYaml` and `replaceConfig` (a VM's config as YAML text, as
 * `maqet edit` reads and saves it).
 *
 * @example
 * ```ts
 * const calls = remoteLibraryCalls(call);
 * const text = await calls.configYaml("web");
 * await calls.replaceConfig("web", text.replace("cpu: 2", "cpu: 4"), { reason: "more cpus" });
 * ```
 */
import { resolve } from "node:path";
import { defer, from, mergeMap } from "rxjs";
import type { Maqet } from "../api/maqet.ts";
import type { ReplayStep } from "../api/ops/time-travel-ops.ts";
import type { DeliveryHold } from "../events/event-store.ts";

/** One JSON request to the agent, its errors thrown as the agent's MaqetError. */
export type JsonCall = <T>(method: "GET" | "PUT", path: string, body?: Record<string, unknown>) => Promise<T>;

export type RemoteLibraryCalls = Pick<Maqet, "replay" | "deliveryHold" | "configYaml" | "replaceConfig">;

export function remoteLibraryCalls(call: JsonCall): RemoteLibraryCalls {
  const vmPath = (vm: string, rest: string) => `/v1/vms/${encodeURIComponent(vm)}/${rest}`;
  return {
    replay: (vm, o = {}) => {
      const query = new URLSearchParams();
      if (o.until !== undefined) query.set("until", o.until.toISOString());
      if (o.version !== undefined) query.set("version", String(o.version));
      const qs = query.toString();
      return defer(() => call<ReplayStep[]>("GET", vmPath(vm, `replay${qs ? `?${qs}` : ""}`))).pipe(
        mergeMap((steps) => from(steps)),
      );
    },
    deliveryHold: async () => {
      const hold = await call<DeliveryHold>("GET", "/v1/events/hold");
      if (hold.holder?.since) hold.holder.since = new Date(hold.holder.since);
      return hold;
    },
    configYaml: async (vm) => (await call<{ yaml: string }>("GET", vmPath(vm, "config"))).yaml,
    replaceConfig: (vm, yaml, o = {}) =>
      call("PUT", vmPath(vm, "config"), {
        yaml,
        ...(o.restart === undefined ? {} : { restart: o.restart }),
        ...(o.stopTimeoutMs === undefined ? {} : { timeout: o.stopTimeoutMs / 1000 }),
        ...(o.reason === undefined ? {} : { reason: o.reason }),
        ...(o.baseDir === undefined ? {} : { baseDir: resolve(o.baseDir) }),
        ...(o.via === undefined ? {} : { via: o.via }),
      }),
  };
}
