/**
 * Fake adapters behind the VM actor's ports: a scripted QEMU (process + QMP session) and a
 * simulated clock whose sleeps advance virtual time at once, so every transition, timeout and
 * escalation runs in milliseconds.
 */
import { Subject } from "rxjs";
import { localLeases } from "../../src/actors/local-leases.ts";
import type {
  Clock,
  LaunchedProcess,
  LeaseHolder,
  ProcessExit,
  ProcessState,
  QmpEvent,
  QmpSession,
  VmLeases,
  VmPorts,
} from "../../src/actors/ports.ts";
import { MaqetError } from "../../src/errors/maqet-error.ts";

export class SimulatedClock implements Clock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    this.t += ms;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

export interface FakeGuest {
  /** Does the guest power off on ACPI powerdown? */
  obeysPowerdown: boolean;
  /** Does QEMU die on SIGTERM? */
  diesOnSigterm: boolean;
}

export class FakeQemu {
  alive = true;
  status = "prelaunch";
  readonly events = new Subject<QmpEvent>();
  readonly executed: string[] = [];
  readonly signals: string[] = [];
  exitResolve!: (exit: ProcessExit) => void;
  readonly exit = new Promise<ProcessExit>((resolve) => {
    this.exitResolve = resolve;
  });
  sessions: FakeSession[] = [];

  constructor(
    readonly pid: number,
    readonly marker: string,
    readonly guest: FakeGuest,
  ) {}

  emit(event: string, data?: Record<string, unknown>): void {
    this.events.next({ event, data, timestamp: { seconds: 0, microseconds: 0 } });
  }

  die(exit: ProcessExit): void {
    if (!this.alive) return;
    this.alive = false;
    this.exitResolve(exit);
    for (const s of this.sessions) s.drop();
  }
}

export class FakeSession implements QmpSession {
  readonly greeting = { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: "fake" }, capabilities: ["oob"] };
  readonly events$: Subject<QmpEvent> = new Subject();
  isClosed = false;
  #resolveClosed!: (info: { error?: Error }) => void;
  readonly closed = new Promise<{ error?: Error }>((resolve) => {
    this.#resolveClosed = resolve;
  });
  readonly #sub;

  constructor(readonly qemu: FakeQemu) {
    this.#sub = qemu.events.subscribe((e) => this.events$.next(e));
  }

  async execute<T>(command: string): Promise<T> {
    if (this.isClosed) throw new MaqetError("QMP_DISCONNECTED", "closed");
    const q = this.qemu;
    q.executed.push(command);
    switch (command) {
      case "cont":
        q.status = "running";
        q.emit("RESUME");
        return {} as T;
      case "stop":
        q.status = "paused";
        q.emit("STOP");
        return {} as T;
      case "query-status":
        return { status: q.status, running: q.status === "running" } as T;
      case "system_powerdown":
        q.emit("POWERDOWN");
        if (q.guest.obeysPowerdown) {
          q.status = "shutdown";
          q.emit("SHUTDOWN", { guest: true, reason: "guest-shutdown" });
          q.emit("STOP");
        }
        return {} as T;
      case "system_reset":
        q.emit("RESET", { guest: false, reason: "host-qmp-system-reset" });
        return {} as T;
      case "quit":
        q.emit("SHUTDOWN", { guest: false, reason: "host-qmp-quit" });
        q.die({ code: 0, signal: null });
        return {} as T;
      default:
        throw new MaqetError("QMP_ERROR", `QMP command '${command}' failed: CommandNotFound`, {
          details: { class: "CommandNotFound", desc: `The command ${command} has not been found`, command },
        });
    }
  }

  drop(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.#sub.unsubscribe();
    this.events$.complete();
    this.#resolveClosed({ error: new Error("EOF") });
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.#sub.unsubscribe();
    this.events$.complete();
    this.#resolveClosed({});
  }
}

export interface FakeWorld {
  ports: VmPorts;
  clock: SimulatedClock;
  qemus: FakeQemu[];
  guest: FakeGuest;
  /** Make the next launch fail with this message (QEMU printed it and exited). */
  failLaunch?: string;
  lookups: string[];
  /** Images a failed start removed (DiskProvisioner.discard). */
  discarded: string[];
  /** Files the "guest" writes: path → content (wait conditions read them). */
  files: Map<string, string>;
}

export function createFakeWorld(guest: Partial<FakeGuest> = {}): FakeWorld {
  const clock = new SimulatedClock();
  const world: FakeWorld = {
    clock,
    qemus: [],
    guest: { obeysPowerdown: true, diesOnSigterm: true, ...guest },
    lookups: [],
    discarded: [],
    files: new Map(),
    ports: undefined as unknown as VmPorts,
  };
  let nextPid = 4000;
  const byPid = (pid: number) => world.qemus.find((q) => q.pid === pid);
  world.ports = {
    clock,
    leases: localLeases(),
    files: {
      exists: async (path) => world.files.has(path),
      readText: async (path) => world.files.get(path),
    },
    host: { kvmUsable: async () => false },
    buildArgv: (_config, runtime) => [
      "-name",
      runtime.name,
      "-uuid",
      runtime.vmId,
      "-qmp",
      `unix:${runtime.qmpSocket}`,
    ],
    locator: {
      locate: async (program) => {
        world.lookups.push(program);
        return `/usr/bin/${program}`;
      },
    },
    disks: {
      ensure: async () => ({ created: true, durationMs: 5 }),
      missing: async (disks) => [...disks],
      discard: async (file) => void world.discarded.push(file),
    },
    qmp: {
      connect: async (socketPath, options) => {
        const q = world.qemus.find((x) => x.alive && socketPath.includes(x.marker));
        if (!q) {
          // Like the real connector: keep retrying until the timeout.
          await clock.sleep(options?.timeoutMs ?? 30_000);
          throw new MaqetError("TIMEOUT", `no QMP at ${socketPath}`);
        }
        const s = new FakeSession(q);
        q.sessions.push(s);
        return s;
      },
    },
    processes: {
      launch: async (spec): Promise<LaunchedProcess> => {
        const marker = spec.args[spec.args.indexOf("-uuid") + 1]!;
        const q = new FakeQemu(nextPid++, marker, world.guest);
        world.qemus.push(q);
        if (world.failLaunch) q.die({ code: 1, signal: null });
        return { pid: q.pid, exit: q.exit };
      },
      probe: (pid, marker): ProcessState => {
        const q = byPid(pid);
        if (!q?.alive) return "gone";
        return q.marker === marker ? "alive" : "foreign";
      },
      kill: (pid, signal) => {
        const q = byPid(pid);
        if (!q) return;
        q.signals.push(signal);
        if (signal === "SIGKILL" || q.guest.diesOnSigterm) q.die({ code: null, signal });
      },
      waitGone: async (pid, marker, timeoutMs) => {
        await clock.sleep(Math.min(timeoutMs, 20));
        return world.ports.processes.probe(pid, marker) !== "alive";
      },
      prepareRuntimeDir: async (vmId) => `/run/maqet/${vmId}`,
      runtimeDirOf: (vmId) => `/run/maqet/${vmId}`,
      zombieExit: () => undefined,
      findProcesses: (marker) => world.qemus.filter((q) => q.alive && q.marker === marker).map((q) => q.pid),
      readPidFile: async (path) => world.qemus.find((q) => q.alive && path.includes(q.marker))?.pid,
      secureSocket: async () => undefined,
      readLogTail: async () => world.failLaunch,
    },
  };
  return world;
}

/** Leases shared by several fake "processes" (orchestrators) over one store, like the lease table. */
export class FakeLeaseTable {
  readonly rows = new Map<string, { holder: LeaseHolder; alive: () => boolean }>();

  /** The VmLeases of one process; `alive` says whether that process still lives. */
  forProcess(pid: number, alive: () => boolean = () => true): VmLeases {
    const me = (): LeaseHolder => ({
      host: "test",
      pid,
      processStart: "1",
      command: `maqet (pid ${pid})`,
      acquiredAt: new Date(0),
      renewedAt: new Date(0),
    });
    return {
      acquire: async (vmId) => {
        const row = this.rows.get(vmId);
        if (row === undefined || row.holder.pid === pid) {
          this.rows.set(vmId, { holder: me(), alive });
          return {};
        }
        if (row.alive()) {
          throw new MaqetError("VM_BUSY", `VM '${vmId}' is being driven by pid ${row.holder.pid} on host test.`, {
            details: { holder: row.holder },
          });
        }
        this.rows.set(vmId, { holder: me(), alive });
        return { takenOverFrom: row.holder };
      },
      renew: async () => undefined,
      release: async (vmId) => {
        if (this.rows.get(vmId)?.holder.pid === pid) this.rows.delete(vmId);
      },
    };
  }
}
