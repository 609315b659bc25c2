/**
 * The {@link Maqet} interface against a running agent: every method is the agent route of its
 * registry command (src/api/command-routes.ts), `events$` and `subscribe()` read `/v1/events`
 * (server-sent events, resumed with Last-Event-ID after a dropped connection), long operations
 * stream their progress into `progress$` and `onProgress`. Nothing here opens a store or loads
 * XState/PGlite: an app embeds the client alone. Runs under Node and Deno (node:http).
 *
 * What differs from in-process: files the caller names are sent as absolute paths of the agent's
 * host (`add` sends the YAML itself); AbortSignals stop waiting for the answer, not the operation.
 * Methods with no CLI command (`replay`, `deliveryHold`, `configYaml`, `replaceConfig`) use the
 * agent's library routes (remote-library-calls.ts).
 *
 * @example
 * ```ts
 * import { createMaqet } from "maqet";
 * const maqet = createMaqet({ agent: "/run/user/1000/maqet/agent.sock" });
 * await maqet.start("web");
 * maqet.subscribe({ vm: "web", from: "end" }).subscribe((m) => console.log(m));
 * ```
 */
import { resolve } from "node:path";
import { Observable, Subject } from "rxjs";
import type { CallerIdentity } from "../api/caller-identity.ts";
import { requestFor, routeOf } from "../api/command-routes.ts";
import type { CommandInput } from "../api/commands/command-spec.ts";
import type { HistoryEntry } from "../api/history-entry.ts";
import type { Maqet, OperationProgress } from "../api/maqet.ts";
import type { EventsMessage, EventsSubscribeOptions } from "../api/ops/events-ops.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { StoredEvent } from "../events/envelope.ts";
import { type AgentEndpoint, agentFetch } from "./agent-transport.ts";
import { callerHeaders } from "./caller-headers.ts";
import { loadConfigText } from "./config-text.ts";
import { attachThroughAgent } from "./console-upgrade.ts";
import { agentError, followAgentEvents } from "./follow-events.ts";
import { remoteLibraryCalls } from "./remote-library-calls.ts";
import { anySignal, clean, followConsole, frames, identityHeaders, toMessage } from "./remote-plumbing.ts";

export interface RemoteMaqetOptions {
  /**
   * Who calls (sent as the `Maqet-*` headers, recorded on the events), over this process's user
   * and pid; `as(caller)` makes a client with another one.
   */
  caller?: CallerIdentity;
  /** The agent's unix socket, or `http://HOST:PORT` (then `token`). */
  agent: string;
  /** Bearer token for a TCP agent. */
  token?: string;
  /** Recorded as the events' `source` (default `library`). */
  source?: string;
  /** Caller's user name, recorded on the events (default: $USER). */
  env?: Record<string, string | undefined>;
}

const seconds = (ms: number | undefined) => (ms === undefined ? undefined : ms / 1000);

/** Builds the remote client; nothing is connected until the first call. */
export function createRemoteMaqet(options: RemoteMaqetOptions): Maqet {
  const endpoint: AgentEndpoint = {
    ...(/^https?:\/\//.test(options.agent) ? { url: options.agent } : { socket: options.agent }),
    ...(options.token ? { token: options.token } : {}),
    headers: { ...callerHeaders(options.source ?? "library", options.env ?? {}), ...identityHeaders(options.caller) },
  };
  const progress$ = new Subject<OperationProgress>();
  const closing = new AbortController();

  const ensureOpen = () => {
    if (closing.signal.aborted)
      throw new MaqetError("INVALID_ARGUMENT", "This maqet instance is closed; create a new one.");
  };
  const library = remoteLibraryCalls(async (method, path, body) => {
    ensureOpen();
    const res = await agentFetch(endpoint, { method, path, ...(body === undefined ? {} : { body }) });
    if (res.status >= 400) throw await agentError(res);
    return res.json();
  });

  const call = async <T>(command: string, input: CommandInput, onProgress?: (p: number) => void): Promise<T> => {
    ensureOpen();
    const request = requestFor(routeOf(command)!, clean(input));
    const streamed =
      onProgress !== undefined ||
      ["snapshot create", "snapshot load", "snapshot delete", "disk convert"].includes(command);
    const res = await agentFetch(endpoint, {
      ...request,
      accept: streamed ? "application/x-ndjson" : "application/json",
    });
    if (res.status >= 400) throw await agentError(res);
    if (!streamed) return (await res.json()) as T;
    return (await frames(res.body, (p) => {
      progress$.next(p);
      onProgress?.(p.percent);
    })) as T;
  };

  const subscribe = (o: EventsSubscribeOptions = {}): Observable<EventsMessage> =>
    new Observable<EventsMessage>((subscriber) => {
      const stop = new AbortController();
      const from = o.from === undefined || o.from === "start" ? undefined : o.from;
      const start = async () => {
        const after = typeof from === "object" ? from.position : from;
        await followAgentEvents(endpoint, {
          ...(o.vm !== undefined ? { vm: o.vm } : {}),
          ...(after !== undefined ? { from: after } : {}),
          ...(o.filter?.types ? { types: o.filter.types } : {}),
          follow: o.follow !== false,
          signal: anySignal(stop.signal, closing.signal),
          onEvent: (line) => subscriber.next(toMessage(line)),
          onCaughtUp: (_position, checkpoint) => subscriber.next({ kind: "caughtUp", checkpoint }),
        });
        subscriber.complete();
      };
      start().catch((error: unknown) => subscriber.error(error));
      return () => stop.abort();
    });

  const maqet: Maqet = {
    add: async (configOrPath, addOptions = {}) => {
      const body: Record<string, unknown> =
        typeof configOrPath === "string"
          ? await loadConfigText(configOrPath).then(({ text, path }) => ({ config: text, path }))
          : { config: configOrPath, baseDir: resolve(".") };
      if (addOptions.name !== undefined) body.name = addOptions.name;
      if (addOptions.host !== undefined) body.host = addOptions.host;
      if (addOptions.constraints !== undefined) {
        body.constraint = Object.entries(addOptions.constraints).map(([k, v]) => `${k}=${v}`);
      }
      const res = await agentFetch(endpoint, { method: "POST", path: "/v1/vms", body });
      if (res.status >= 400) throw await agentError(res);
      return res.json();
    },
    start: (vm, o = {}) => {
      if (o.waitFor !== undefined && typeof o.waitFor !== "string") {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          "Through the agent, waitFor is given as text: qmp, process, file:/PATH or serial:REGEX.",
        );
      }
      return call("start", { vm, timeout: seconds(o.timeoutMs), "wait-for": o.waitFor as string | undefined });
    },
    stop: (vm, o = {}) => call("stop", { vm, force: o.force, timeout: seconds(o.timeoutMs) }),
    remove: async (vm, o = {}) => {
      await call("rm", { vm, force: o.force });
    },
    list: () => call("ls", {}),
    status: (vm) => call("status", { vm }),
    ports: (vm) => call("port", { vm }),
    inspect: (vm, o = {}) => (o.planned === true ? call("start", { vm, "dry-run": true }) : call("inspect", { vm })),
    pause: (vm) => call("pause", { vm }),
    resume: (vm) => call("resume", { vm }),
    reset: (vm) => call("reset", { vm }),
    qmp: (vm, command, args, o = {}) =>
      call("qmp", {
        vm,
        command,
        args: args === undefined ? undefined : JSON.stringify(args),
        "allow-dangerous": o.allowDangerous,
        timeout: seconds(o.timeoutMs),
      }),
    sendKeys: (vm, keys, o = {}) =>
      call("qmp keys", { vm, keys: [...keys], "hold-time": o.holdTimeMs, timeout: seconds(o.timeoutMs) }),
    typeText: (vm, text, o = {}) =>
      call("qmp type", { vm, text, "hold-time": o.holdTimeMs, timeout: seconds(o.timeoutMs) }),
    screendump: (vm, file, o = {}) =>
      call("qmp screendump", { vm, file: resolve(file), format: o.format, timeout: seconds(o.timeoutMs) }),
    deviceAdd: (vm, driver, id, props = {}, o = {}) =>
      call("qmp device-add", {
        vm,
        driver,
        id,
        props: Object.entries(props).map(([k, v]) => `${k}:=${JSON.stringify(v)}`),
        timeout: seconds(o.timeoutMs),
      }),
    deviceDel: (vm, id, o = {}) => call("qmp device-del", { vm, id, timeout: seconds(o.timeoutMs) }),
    hosts: () => call("host ls", {}),
    drainHost: (name, o = {}) => call("host drain", { name, live: o.live }),
    restoreHost: (name) => call("host restore", { name }),
    markHostDead: (name) => call("host mark-dead", { name }),
    removeHost: (name) => call("host rm", { name }),
    // The route answers history's one shape ({vm, point, version, events, state, config}).
    history: async (vm) => {
      const answer = await call<HistoryEntry[] | { events: HistoryEntry[] }>("history", { vm });
      return Array.isArray(answer) ? answer : answer.events;
    },
    historyAt: (vm, point) => call("history", { vm, at: point.at?.toISOString(), version: point.version }),
    replay: library.replay,
    get events$() {
      return new Observable<StoredEvent>((subscriber) =>
        subscribe({ from: "start" }).subscribe({
          next: (m) => {
            if (m.kind === "event") subscriber.next(m.event);
          },
          error: (e) => subscriber.error(e),
          complete: () => subscriber.complete(),
        }),
      );
    },
    subscribe,
    deliveryHold: library.deliveryHold,
    audit: (f = {}) => call("audit", { vm: f.vm, since: f.since?.toISOString(), until: f.until?.toISOString() }),
    auditVerify: async () => {
      try {
        return await call("audit verify", {});
      } catch (error) {
        if (error instanceof MaqetError && error.code === "AUDIT_TAMPERED") return error.details as never;
        throw error;
      }
    },
    stats: () => call("stats", {}),
    console: async (vm) => {
      const shown = await call<{ vm: string; path: string; state: string; text: string }>("console", { vm });
      return {
        vm: shown.vm,
        path: shown.path,
        state: shown.state,
        read: async () => (await call<{ text: string }>("console", { vm })).text,
        follow$: () => followConsole(endpoint, vm),
      };
    },
    attachConsole: (vm, o = {}) => attachThroughAgent(endpoint, vm, o),
    // Through an agent the attach and its detach are recorded by the agent.
    recordConsoleDetached: async () => undefined,
    createSnapshot: (vm, o) =>
      call(
        "snapshot create",
        { vm, drive: o.drive, name: o.tag, overwrite: o.overwrite, timeout: seconds(o.timeoutMs) },
        o.onProgress,
      ),
    loadSnapshot: (vm, o) =>
      call("snapshot load", { vm, drive: o.drive, name: o.tag, timeout: seconds(o.timeoutMs) }, o.onProgress),
    deleteSnapshot: (vm, o) =>
      call("snapshot delete", { vm, drive: o.drive, name: o.tag, timeout: seconds(o.timeoutMs) }, o.onProgress),
    // MAQET's compatibility operations (src/api/ops/maqet-compat-ops.ts, reconfigure-ops.ts):
    // files travel as absolute paths of this host (an agent on another host does not see them).
    addConfigs: (files, o = {}) =>
      call("add", {
        config: files.map((f) => resolve(f)),
        name: o.name,
        memory: o.overrides?.memory,
        cpu: o.overrides?.cpu,
        binary: o.overrides?.binary,
        "enable-kvm": o.overrides?.enableKvm,
        empty: o.empty,
        host: o.host,
        constraint: o.constraints ? Object.entries(o.constraints).map(([k, v]) => `${k}=${v}`) : undefined,
      }),
    info: (vm) => call("info", { vm }),
    listByStatus: (status) => call("ls", { status }),
    removeAll: async (o = {}) => {
      const done = await call<{ vms: string[] }>("rm", { all: true, force: o.force ?? true });
      return done.vms.map((name) => ({ name, removed: true }));
    },
    storageOrphaned: () => call("storage orphaned", {}),
    storageVerify: (vm) => call("storage verify", { vm }),
    storageAttach: (name, path, files) =>
      call("storage attach", { name, path: resolve(path), config: files.map((f) => resolve(f)) }),
    cleanup: (o = {}) => call("cleanup", { "dry-run": o.dryRun }),
    apply: (vm, o = {}) =>
      call("apply", {
        vm,
        config: (o.files ?? []).map((f) => resolve(f)),
        memory: o.overrides?.memory,
        cpu: o.overrides?.cpu,
        binary: o.overrides?.binary,
        "enable-kvm": o.overrides?.enableKvm,
        restart: o.restart,
        reason: o.reason,
      }),
    configYaml: library.configYaml,
    replaceConfig: library.replaceConfig,
    listSnapshots: (vm, o = {}) => call("snapshot list", { vm, drive: o.drive }),
    createDisk: (file, o) =>
      call("disk create", {
        file: resolve(file),
        format: o.format,
        size: o.size,
        backing: o.backingFile,
        "backing-format": o.backingFormat,
        options: o.options
          ? Object.entries(o.options)
              .map(([k, v]) => `${k}=${String(v).replaceAll(",", ",,")}`)
              .join(",")
          : undefined,
      }),
    diskInfo: (file) => call("disk info", { file: resolve(file) }),
    checkDisk: (file, o = {}) => call("disk check", { file: resolve(file), format: o.format }),
    resizeDisk: (file, size, o = {}) => call("disk resize", { file: resolve(file), size, shrink: o.shrink }),
    convertDisk: (source, target, o) =>
      call(
        "disk convert",
        {
          source: resolve(source),
          target: resolve(target),
          format: o.format,
          "source-format": o.sourceFormat,
          compress: o.compress,
          timeout: seconds(o.timeoutMs),
        },
        o.onProgress,
      ),
    doctor: (o = {}) => call("doctor", { "skip-kvm": o.skipKvm }),
    progress$: progress$.asObservable(),
    projections: () => call("projections", {}),
    rebuildProjection: (name) => call("projections rebuild", { name }),
    migrate: async () => (await call<{ applied: string[] }>("migrate", {})).applied,
    migrateVm: (vm, o) =>
      call("migrate", {
        vm,
        to: o.to,
        "downtime-ms": o.downtimeMs,
        bandwidth: o.bandwidthMiBs,
        timeout: seconds(o.timeoutMs),
      }),
    cancelMigration: (vm) => call("migrate", { vm, cancel: true }),
    migrationPrepare: () => destinationOnly("migrationPrepare"),
    migrationFinish: () => destinationOnly("migrationFinish"),
    migrationAbort: () => destinationOnly("migrationAbort"),
    migrationCancel: () => destinationOnly("migrationCancel"),
    close: async () => {
      closing.abort();
      progress$.complete();
    },
    // The agent records the identity of the connection's caller; acting for another is its decision.
    as: () => {
      throw new MaqetError(
        "INVALID_ARGUMENT",
        "as(caller) acts for another caller inside the process that runs maqet; through an agent, the agent records who is connected.",
      );
    },
  };
  // The core's per-caller view (`maqet.as(caller)`): here, a client that sends that caller.
  return Object.assign(maqet, {
    as: (caller: CallerIdentity) => createRemoteMaqet({ ...options, caller: { ...options.caller, ...caller } }),
  });
}

/** A live migration's destination steps run inside the destination host's agent, never through a client. */
function destinationOnly(method: string): never {
  throw new MaqetError(
    "INVALID_ARGUMENT",
    `${method} is a live migration's destination step: the VM's owner routes it to the destination host's agent. Call migrateVm(vm, { to }) instead.`,
  );
}
