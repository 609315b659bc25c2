/**
 * The maqet facade: one object for everything a program (or the CLI) does with VMs.
 * `createMaqet` wires the real adapters; nothing is opened until the first call.
 * Directories come from options or from the `env` you pass (the CLI passes `process.env`);
 * without `env`, only binary lookup falls back to this process's PATH.
 *
 * @example
 * ```ts
 * import { createMaqet } from "maqet";
 * const maqet = createMaqet({ dataDir: "/tmp/maqet-demo" });
 * await maqet.add("examples/demo.yaml");
 * await maqet.start("demo");
 * console.log(await maqet.qmp("demo", "query-status"));
 * await maqet.stop("demo");
 * console.log((await maqet.history("demo")).map((e) => e.type));
 * await maqet.close();
 * ```
 */
import { defer, from, mergeMap, Observable } from "rxjs";
import type { Orchestrator } from "../actors/orchestrator.ts";
import type { VmPorts } from "../actors/ports.ts";
import type { VmActor } from "../actors/vm-actor.ts";
import { loadVmConfig } from "../adapters/load-vm-config.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { StoredEvent } from "../events/envelope.ts";
import type { EventStore } from "../events/event-store.ts";
import { vmStreamId } from "../events/vm-events.ts";
import { type HistoryEntry, toHistoryEntry } from "./history-entry.ts";
import { openRuntime, type Runtime } from "./runtime.ts";
import { toVmStatus, type VmStatus } from "./vm-status.ts";

export interface MaqetOptions {
  /** PostgreSQL server URL; when absent the embedded PGlite store under `dataDir` is used. */
  databaseUrl?: string;
  /** Data directory (embedded store). Default `$XDG_DATA_HOME/maqet` from `env`, else `~/.local/share/maqet`. */
  dataDir?: string;
  /** Root of per-VM runtime directories. Default `$XDG_RUNTIME_DIR/maqet` from `env`, else `/tmp/maqet-<uid>`. */
  runtimeDir?: string;
  /** Environment used for defaults and binary overrides (`MAQET_QEMU_IMG`, `PATH`...). Default: none. */
  env?: Record<string, string | undefined>;
  /** Recorded as each event's `metadata.source`. Default `library`. */
  source?: string;
  /** Receives non-fatal notes, e.g. a MAQET config key that has no effect. Default: ignored. */
  onWarning?: (message: string) => void;
  /** How long to wait for another process holding the embedded store. Default 5000 ms. */
  lockWaitMs?: number;
  /** Replace adapters (tests). */
  ports?: Partial<VmPorts>;
  /** Use this store instead of opening one. It is not closed by `close()`. */
  store?: EventStore;
}

export interface AddOptions {
  /** VM name; overrides `name:` in the config. */
  name?: string;
}

export interface StartOptions {
  /** How long to wait for QEMU's QMP socket. Default 30 s. */
  timeoutMs?: number;
}

export interface StopVmOptions {
  /** Skip the graceful steps: SIGKILL. */
  force?: boolean;
  /** How long the guest gets to power off before `quit`, SIGTERM, SIGKILL. Default 30 s. */
  timeoutMs?: number;
}

export interface QmpOptions {
  timeoutMs?: number;
}

/** A config given as an object: the same keys as the YAML file. */
export type VmConfigInput = Record<string, unknown>;

export interface Maqet {
  add(configOrPath: string | VmConfigInput, options?: AddOptions): Promise<VmStatus>;
  start(name: string, options?: StartOptions): Promise<VmStatus>;
  /** Stops the VM; `alreadyStopped` is true when there was nothing to do. */
  stop(name: string, options?: StopVmOptions): Promise<VmStatus & { alreadyStopped: boolean }>;
  remove(name: string, options?: StopVmOptions): Promise<void>;
  list(): Promise<VmStatus[]>;
  status(name: string): Promise<VmStatus>;
  qmp<T = unknown>(name: string, command: string, args?: Record<string, unknown>, options?: QmpOptions): Promise<T>;
  history(name: string): Promise<HistoryEntry[]>;
  /** Every stored event from the start, then events as this process appends them. */
  readonly events$: Observable<StoredEvent>;
  /** Applies pending schema migrations (also done on open); returns their names. */
  migrate(): Promise<string[]>;
  /** Closes QMP connections and the store. Running VMs keep running. */
  close(): Promise<void>;
}

/** QMP command names: lower-case words with `-` or `_`, nothing that could be an option. */
const QMP_COMMAND_PATTERN = /^[a-z][a-z0-9_-]*$/;

export function createMaqet(options: MaqetOptions = {}): Maqet {
  let runtime: Promise<Runtime> | undefined;
  let closed = false;
  const open = (): Promise<Runtime> => {
    if (closed)
      return Promise.reject(new MaqetError("INVALID_ARGUMENT", "This maqet instance is closed; create a new one."));
    runtime ??= openRuntime(options);
    runtime.catch(() => {
      runtime = undefined;
    });
    return runtime;
  };
  /** Runs one operation with a fresh correlation id on its events. */
  const operation = async <T>(run: (rt: Runtime, orchestrator: Orchestrator) => Promise<T>): Promise<T> => {
    const rt = await open();
    rt.orchestrator.setMetadata({ correlationId: crypto.randomUUID(), source: options.source ?? "library" });
    return run(rt, rt.orchestrator);
  };
  const withVm = <T>(name: string, run: (vm: VmActor) => Promise<T>): Promise<T> =>
    operation(async (_rt, orchestrator) => run(await orchestrator.actor(name)));

  return {
    add: async (configOrPath, addOptions = {}) => {
      // Validated before the store is even opened: a bad file costs nothing and records nothing.
      const loaded = await loadVmConfig(configOrPath, { nameOverride: addOptions.name, onWarning: options.onWarning });
      return operation(async (_rt, orchestrator) => {
        const name = addOptions.name ?? loaded.config.name ?? `vm-${crypto.randomUUID().slice(0, 8)}`;
        const view = await orchestrator.define(loaded.config, { name, configPath: loaded.path });
        return toVmStatus(view);
      });
    },
    start: (name, startOptions = {}) =>
      withVm(name, async (vm) => {
        await vm.start(startOptions);
        return toVmStatus(vm.view);
      }),
    stop: (name, stopOptions = {}) =>
      withVm(name, async (vm) => {
        const outcome = await vm.stop(stopOptions);
        return { ...toVmStatus(vm.view), alreadyStopped: outcome.noop === true };
      }),
    remove: (name, removeOptions = {}) =>
      withVm(name, async (vm) => {
        await vm.remove(removeOptions);
      }),
    list: () => operation(async (_rt, orchestrator) => (await orchestrator.liveViews()).map(toVmStatus)),
    status: (name) => operation(async (_rt, orchestrator) => toVmStatus(await orchestrator.liveView(name))),
    qmp: (name, command, args, qmpOptions = {}) => {
      // Checked before the VM is even looked up: a malformed name never reaches QEMU or the store.
      if (!QMP_COMMAND_PATTERN.test(command)) {
        return Promise.reject(
          new MaqetError(
            "INVALID_ARGUMENT",
            `Invalid QMP command name '${command}': it must match ${QMP_COMMAND_PATTERN} (e.g. query-status).`,
          ),
        );
      }
      return withVm(name, (vm) => vm.qmp(command, args, qmpOptions));
    },
    history: (name) =>
      operation(async (rt, orchestrator) => {
        const view = await orchestrator.find(name);
        return (await rt.store.readStream(vmStreamId(view.vmId))).map(toHistoryEntry);
      }),
    events$: defer(() => from(open())).pipe(mergeMap((rt) => catchUpThenLive(rt.store))),
    migrate: async () => (await open()).migrate(),
    close: async () => {
      if (closed) return;
      closed = true;
      const pending = runtime;
      runtime = undefined;
      const rt = await pending?.catch(() => undefined);
      await rt?.close();
    },
  };
}

/**
 * Stored events from the start, then those this process appends. Live events are buffered
 * while the backlog is read, so none falls between the two; event ids dedupe the overlap
 * (positions are not monotonic in read order: the store orders by transaction, then position).
 */
function catchUpThenLive(store: EventStore): Observable<StoredEvent> {
  return new Observable<StoredEvent>((subscriber) => {
    let backlogIds: Set<string> | undefined;
    const buffered: StoredEvent[] = [];
    const live = store.appended$.subscribe({
      next: (event) => {
        if (backlogIds === undefined) buffered.push(event);
        else subscriber.next(event);
      },
      complete: () => subscriber.complete(),
      error: (error) => subscriber.error(error),
    });
    store
      .readAll()
      .then((events) => {
        for (const event of events) subscriber.next(event);
        backlogIds = new Set(events.map((e) => e.id));
        for (const event of buffered.splice(0)) if (!backlogIds.has(event.id)) subscriber.next(event);
      })
      .catch((error) => subscriber.error(error));
    return () => live.unsubscribe();
  });
}
