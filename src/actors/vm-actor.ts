/**
 * One VM, live: the XState machine wired to real effects, its stream recorder, and a lock so
 * only one mutating operation runs at a time (the actor is the lock). Created by rehydrating
 * from the VM's stream; a VM whose QEMU still runs is reattached, one whose QEMU vanished gets
 * the fact recorded.
 *
 * Past 400 lines because it is the one place a VM's operations meet its lock, lease and
 * recorder; the effects, facts and waits it runs live in their own files (a live migration's in
 * src/actors/migration/).
 *
 * @example
 * ```ts
 * const vm = await VmActor.load({ ports, store }, vmId);
 * await vm.start({ timeoutMs: 30000 });
 * await vm.qmp("query-status");
 * await vm.stop({ force: false, timeoutMs: 30000 });
 * ```
 */
import { type Actor, createActor, fromCallback, fromPromise, waitFor } from "xstate";
import { isMaqetError, MaqetError } from "../errors/maqet-error.ts";
import type { EventMetadata, NewEvent, StoredEvent } from "../events/envelope.ts";
import type { EventStore } from "../events/event-store.ts";
import { vmEvent, vmStreamId } from "../events/vm-events.ts";
import { launchQemu, preflightLaunch } from "./launch-qemu.ts";
import type { LockHolder, OperationScope } from "./operation-scope.ts";
import type { LeaseHolder, QmpExecuteOptions, QmpSession, VmPorts } from "./ports.ts";
import { decideQmp, QMP_VALUE_SAFE_COMMANDS, type QmpDecision, qmpRefusedError } from "./qmp-policy.ts";
import { reattachQemu } from "./reattach-qemu.ts";
import { escalateStop, type StopStep, stopQemu } from "./stop-qemu.ts";
import { StreamRecorder } from "./stream-recorder.ts";
import { type RecordInput, type VmCommand, type VmOutcome, vmMachine } from "./vm-machine.ts";
import { foldVmEvents, type VmView } from "./vm-view.ts";
import { awaitStartCondition, describeWaitCondition, sshEndpoint, type WaitCondition } from "./wait-condition.ts";
import { watchQemu } from "./watch-qemu.ts";

export interface VmActorDeps {
  ports: VmPorts;
  store: EventStore;
  /**
   * Told when a fact seen with no operation to fail (a crash, a guest power-off, a pause) could
   * not be recorded. Otherwise the next operation on the VM surfaces it.
   */
  onWarning?: (message: string) => void;
  /**
   * Run once when the actor is loaded, after reconciling and before any operation: gives a
   * request a dead process left open its true outcome (src/actors/recover-requests.ts).
   */
  recover?: (access: VmAccess) => Promise<void>;
}

/** What {@link VmActor.exclusive} hands to the work it runs. */
export interface VmAccess {
  view: VmView;
  /** True when QEMU runs and its QMP session is open. */
  running: boolean;
  session?: QmpSession;
  ports: VmPorts;
  record(events: readonly NewEvent[]): Promise<StoredEvent[]>;
}

/** What {@link VmActor.migrateOut} hands to the migration it runs. */
export interface MigrationAccess {
  view: VmView;
  session: QmpSession;
  ports: VmPorts;
  /** Whether the guest's vCPUs ran when the migration began. */
  wasRunning: boolean;
  /** Set by the migration once ownership moved (and cleared if it was moved back). */
  moved: boolean;
  record(events: readonly NewEvent[]): Promise<StoredEvent[]>;
  /** Events the migration appended through another path (the placement's transaction). */
  adopt(events: readonly StoredEvent[]): void;
}

export interface StopOptions {
  force?: boolean;
  timeoutMs?: number;
}

export const DEFAULT_START_TIMEOUT_MS = 30_000;
export const DEFAULT_STOP_TIMEOUT_MS = 30_000;
/** How often a held lease is renewed (a third of the lease store's default 30 s time to live). */
export const LEASE_RENEW_MS = 10_000;

type VmMachineActor = Actor<typeof vmMachine>;

export class VmActor {
  readonly #actor: VmMachineActor;
  readonly #recorder: StreamRecorder;
  readonly #deps: VmActorDeps;
  #lock: Promise<unknown> = Promise.resolve();
  #opCounter = 0;
  /** Observations (pause/resume) that could not be recorded; surfaced by the next operation. */
  #observationError: unknown;
  /** Observations made while a QMP command runs, recorded right after the command's own fact. */
  #heldObservations: NewEvent[] | undefined;
  /** The operation holding the VM first, then those waiting for it, in order (FIFO). */
  readonly #queue: Array<LockHolder & { scope?: OperationScope }> = [];
  /** The scope whose events are being recorded now: the holder's once it runs, the loader's while loading. */
  #current: OperationScope | undefined;
  #leaseTimer: ReturnType<typeof setInterval> | undefined;

  private constructor(deps: VmActorDeps, view: VmView, recoveredFrom?: LeaseHolder) {
    this.#deps = deps;
    this.#recorder = new StreamRecorder(deps.store, view.streamId, view.version);
    const { ports } = deps;
    const recorder = this.#recorder;
    const recordStep = (step: StopStep, waitMs: number, recorded?: StopStep) => {
      if (step !== recorded) this.#observe([vmEvent("vm.stop-step", { step })]);
      this.#current?.onStep?.(this.view.name, { operation: "vm.stop", step, waitMs, pid: this.view.pid });
    };
    const machine = vmMachine.provide({
      actors: {
        record: fromPromise(async ({ input }) => {
          const unprompted = input.spontaneous === true || this.#current === undefined;
          try {
            return await recorder.record(input.events, this.#metadataNow(input.spontaneous));
          } catch (error) {
            if (unprompted) this.#warnUnrecorded(input.events, error);
            throw error;
          }
        }),
        launch: fromPromise(({ input, signal }) => launchQemu(ports, { ...input, signal })),
        reattach: fromPromise(({ input, signal }) => reattachQemu(ports, { ...input, signal })),
        stop: fromPromise(({ input, signal }) =>
          stopQemu(ports, { ...input, signal, onStep: (step, ms) => recordStep(step, ms, input.recordedStep) }),
        ),
        finish: fromPromise(({ input, signal }) =>
          escalateStop(ports, { ...input, signal, onStep: recordStep }, "quit"),
        ),
        watch: fromCallback(({ input, sendBack }) => (input ? watchQemu(ports, input, sendBack) : undefined)),
      },
      actions: {
        observe: (_args, params: RecordInput) => {
          // During a QMP command its own fact goes first: cause before effect in the history.
          // What the guest did on its own is no command's effect: recorded at once, as its own.
          if (params.spontaneous) this.#observe(params.events, true);
          else if (this.#heldObservations) this.#heldObservations.push(...params.events);
          else this.#observe(params.events);
        },
      },
    });
    this.#actor = createActor(machine, { input: { view, recoveredFrom } });
  }

  /** Rehydrates a VM from its stream and reconciles it with reality. */
  static async load(deps: VmActorDeps, vmId: string, scope?: OperationScope): Promise<VmActor> {
    // The lease first: this process becomes the VM's one driver (or learns who is), and only
    // then reads the stream, so what it reconciles is what the previous driver left.
    const lease = await deps.ports.leases.acquire(vmId, await deps.store.streamVersion(vmStreamId(vmId)));
    try {
      const events = await deps.store.readStream(vmStreamId(vmId));
      const view = foldVmEvents(events);
      if (view === undefined) {
        throw new MaqetError("VM_NOT_FOUND", `VM with id '${vmId}' not found. List VMs with \`maqet ls\`.`);
      }
      const vm = new VmActor(deps, view, lease.takenOverFrom);
      // Facts recorded while reconciling belong to the operation that touched the VM.
      vm.#current = scope;
      try {
        vm.#actor.start();
        await vm.#settled();
        // What reconciling observed (a reattach, a pause nobody saw) is in the store before anyone reads the view.
        await vm.flush();
      } finally {
        vm.#current = undefined;
      }
      const { recover } = deps;
      if (recover !== undefined) await vm.exclusive((access) => recover(access), scope);
      vm.#keepLease();
      return vm;
    } catch (error) {
      await deps.ports.leases.release(vmId).catch(() => undefined);
      throw error;
    }
  }

  /** Renews the lease while this actor lives (holders on other hosts are judged by it). */
  #keepLease(): void {
    const timer = setInterval(() => {
      this.#deps.ports.leases.renew(this.view.vmId).catch(() => undefined);
    }, LEASE_RENEW_MS);
    (timer as { unref?: () => void }).unref?.();
    this.#leaseTimer = timer;
  }

  /**
   * True once an append was refused because another writer moved the stream: this actor's
   * picture is out of date and the orchestrator replaces it with a fresh one.
   */
  get stale(): boolean {
    return this.#recorder.conflicted || this.#migratedAway;
  }

  /** Set once a live migration moved the VM to another QEMU: this actor no longer drives it. */
  #migratedAway = false;

  get view(): VmView {
    return this.#actor.getSnapshot().context.view;
  }

  /** The machine state, e.g. `stopped`, `running.active`, `running.paused`. */
  get state(): string {
    const value = this.#actor.getSnapshot().value;
    return typeof value === "string" ? value : Object.entries(value).map(([k, v]) => `${k}.${String(v)}`)[0]!;
  }

  /**
   * The operation holding this VM and how many wait behind it (undefined when idle). Operations
   * on one VM run one at a time, in the order they were called.
   */
  get busy(): { holder: LockHolder; waiting: number } | undefined {
    const [head, ...rest] = this.#queue;
    if (head === undefined) return undefined;
    const { scope: _scope, ...holder } = head;
    return { holder, waiting: rest.length };
  }

  /**
   * The metadata of the events recorded now: the running operation's, or, for what QEMU or the
   * guest did on its own (`spontaneous`: a crash, a guest reset or power-off, even while some
   * operation holds the VM; or anything seen with no operation running), a fresh correlation id
   * of its own: nobody's operation caused it.
   */
  #metadataNow(spontaneous = false): Partial<EventMetadata> {
    return (spontaneous ? undefined : this.#current?.metadata) ?? { correlationId: crypto.randomUUID() };
  }

  /**
   * Starts the VM and waits for `waitFor` (default `qmp`) within `timeoutMs` (default 30 s) from
   * the call. A wait that times out records `vm.wait-failed` and throws TIMEOUT; the VM keeps running.
   */
  async start(
    options: { timeoutMs?: number; waitFor?: WaitCondition } = {},
    scope?: OperationScope,
  ): Promise<VmOutcome> {
    const { ports } = this.#deps;
    // Refused before anything is recorded: waiting for an SSH server nothing forwards to.
    if (options.waitFor?.kind === "ssh") sshEndpoint(this.view);
    const timeoutMs = options.timeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    const deadline = ports.clock.now() + timeoutMs;
    const waitFor = options.waitFor ?? { kind: "qmp" };
    const command: VmCommand = {
      type: "START",
      opId: this.#nextOp(),
      timeoutMs,
      runtimeDir: ports.processes.runtimeDirOf(this.view.vmId),
    };
    // Only a start that will really launch needs the binaries; "already running" says so itself.
    const outcome = await this.#command(command, scope, async () => {
      if (this.#actor.getSnapshot().matches("stopped")) await preflightLaunch(ports, this.view.config);
    });
    if (waitFor.kind === "process") return outcome;
    await this.#exclusive(`start (waiting for ${waitFor.kind})`, scope, () => {
      // Only a condition the caller chose is worth telling (QMP up is part of any start).
      if (waitFor.kind !== "qmp") {
        const ssh = waitFor.kind === "ssh" ? sshEndpoint(this.view) : undefined;
        scope?.onStep?.(this.view.name, {
          operation: "vm.start",
          step: "wait",
          waitMs: Math.max(0, deadline - ports.clock.now()),
          pid: this.view.pid,
          condition: ssh ? `ssh:${ssh.host}:${ssh.port}` : describeWaitCondition(waitFor),
        });
      }
      return this.#withAccess((access) => awaitStartCondition(access, waitFor, { deadline, timeoutMs }));
    });
    return outcome;
  }

  stop(options: StopOptions = {}, scope?: OperationScope): Promise<VmOutcome> {
    return this.#command(
      {
        type: "STOP",
        opId: this.#nextOp(),
        force: options.force ?? false,
        timeoutMs: options.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS,
      },
      scope,
    );
  }

  remove(options: StopOptions = {}, scope?: OperationScope): Promise<VmOutcome> {
    return this.#command(
      {
        type: "REMOVE",
        opId: this.#nextOp(),
        force: options.force ?? false,
        timeoutMs: options.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS,
      },
      scope,
    );
  }

  /**
   * Pauses the guest's vCPUs (QMP `stop`). The fact is QEMU's STOP event, recorded as
   * `vm.paused` (detail `user`); pausing a paused VM does nothing.
   */
  pause(scope?: OperationScope): Promise<VmOutcome> {
    return this.#runState("pause", "stop", (s) => s.matches({ running: "paused" }), scope);
  }

  /** Resumes a paused guest (QMP `cont`), recorded as `vm.resumed`; a running VM is left alone. */
  resume(scope?: OperationScope): Promise<VmOutcome> {
    return this.#runState("resume", "cont", (s) => s.matches({ running: "active" }), scope);
  }

  /** Resets the machine (QMP `system_reset`), recorded as `vm.reset` (guest false). */
  reset(scope?: OperationScope): Promise<VmOutcome> {
    return this.#runState("reset", "system_reset", () => false, scope);
  }

  #runState(
    verb: string,
    command: string,
    alreadyThere: (snapshot: ReturnType<VmMachineActor["getSnapshot"]>) => boolean,
    scope: OperationScope | undefined,
  ): Promise<VmOutcome> {
    const opId = this.#nextOp();
    return this.#exclusive(verb, scope, async () => {
      const { snapshot, session } = this.#running(
        (name) =>
          `Cannot ${verb} VM '${name}': it is not running (state: ${this.view.status}). Start it with \`maqet start ${name}\`.`,
      );
      if (alreadyThere(snapshot)) return { opId, ok: true, noop: true };
      // QEMU sends the event (STOP, RESUME, RESET) before its reply: by now the machine has it.
      await session.execute(command, undefined, { timeoutMs: 10_000 });
      await this.flush();
      return { opId, ok: true };
    });
  }

  /**
   * Runs one QMP command on the running VM and records `qmp.command-executed` (with the tier and
   * the rule of `options.decision`). An allowed dangerous command records `vm.tainted` first.
   * Without a decision the default policy and the VM's own `qmp:` rules decide; a refusal here
   * throws `QMP_REFUSED` unrecorded (the facade decides, and records refusals, before this).
   */
  qmp<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    options: QmpExecuteOptions & { decision?: QmpDecision; scope?: OperationScope } = {},
  ): Promise<T> {
    const decision = options.decision ?? decideQmp(command, { vm: this.view.config.qmp, vmName: this.view.name });
    if (!decision.allowed || decision.command !== command)
      return Promise.reject(qmpRefusedError(decision, this.view.name));
    return this.#exclusive(`qmp ${command}`, options.scope, async () => {
      const { session } = this.#running(
        (name) => `VM '${name}' is not running (state: ${this.view.status}). Start it with \`maqet start ${name}\`.`,
      );
      const clock = this.#deps.ports.clock;
      const t0 = clock.now();
      const argumentNames = Object.keys(args ?? {});
      const policy = {
        tier: decision.tier,
        rule: decision.rule,
        ...(args && QMP_VALUE_SAFE_COMMANDS.includes(command) ? { arguments: args } : {}),
      };
      // Once per run, as libvirt logs a taint flag once; every use stays in qmp.command-executed.
      if (decision.taint && this.view.taint === undefined) {
        const tainted = await this.#recorder.record(
          [vmEvent("vm.tainted", { reason: "custom-monitor", command })],
          this.#metadataNow(),
        );
        this.#actor.send({ type: "RECORDED", events: tainted });
      }
      this.#heldObservations = [];
      try {
        const result = await session.execute<T>(command, args, options);
        await this.#recorder.record(
          [
            vmEvent("qmp.command-executed", {
              command,
              argumentNames,
              outcome: "ok",
              durationMs: clock.now() - t0,
              ...policy,
            }),
          ],
          this.#metadataNow(),
        );
        return result;
      } catch (error) {
        if (isMaqetError(error) && (error.code === "QMP_ERROR" || error.code === "QMP_TIMEOUT")) {
          await this.#recorder.record(
            [
              vmEvent("qmp.command-executed", {
                command,
                argumentNames,
                outcome: "error",
                errorClass: String(error.details.class ?? error.code),
                errorDesc: typeof error.details.desc === "string" ? error.details.desc : error.message,
                durationMs: clock.now() - t0,
                ...policy,
              }),
            ],
            this.#metadataNow(),
          );
        }
        throw error;
      } finally {
        const held = this.#heldObservations;
        this.#heldObservations = undefined;
        if (held.length) this.#observe(held);
      }
    });
  }

  /**
   * Runs a live migration out of this VM's QEMU (src/actors/migration/migrate-out.ts) as the VM's
   * one operation. The machine stops watching QEMU meanwhile (the migration reads QEMU's events
   * itself: the STOP at switchover is the migration's). If the VM moved, this actor retires
   * ({@link stale}: the orchestrator loads the VM afresh, now the destination's QEMU); if not, it
   * watches the source again.
   */
  migrateOut<T>(run: (access: MigrationAccess) => Promise<T>, scope?: OperationScope): Promise<T> {
    return this.#exclusive("migrate", scope, async () => {
      const { snapshot, session } = this.#running(
        (name) =>
          `Cannot migrate VM '${name}': it is not running (state: ${this.view.status}). A stopped VM needs no live migration: ` +
          "place it elsewhere and start it there (`maqet host drain`), or start it first.",
      );
      const wasRunning = snapshot.matches({ running: "active" });
      const metadata = this.#metadataNow();
      const access: MigrationAccess = {
        view: this.view,
        session,
        ports: this.#deps.ports,
        wasRunning,
        moved: false,
        record: async (events) => {
          const stored = await this.#recorder.record(events, metadata);
          this.#actor.send({ type: "RECORDED", events: stored });
          return stored;
        },
        adopt: (events) => {
          this.#recorder.adopt(events);
          this.#actor.send({ type: "RECORDED", events: [...events] });
        },
      };
      this.#actor.send({ type: "MIGRATION.BEGIN" });
      try {
        return await run(access);
      } finally {
        if (access.moved) this.#migratedAway = true;
        const running = access.moved ? false : await isRunning(session);
        this.#actor.send({ type: "MIGRATION.END", moved: access.moved, running });
      }
    });
  }

  /** The machine and its live QMP session, or VM_INVALID_STATE with `message` when QEMU is not running. */
  #running(message: (name: string) => string) {
    const snapshot = this.#actor.getSnapshot();
    const session = snapshot.context.session;
    if (!snapshot.matches("running") || session === undefined || session.isClosed) {
      throw new MaqetError("VM_INVALID_STATE", message(this.view.name), { details: { state: this.view.status } });
    }
    return { snapshot, session };
  }

  #warnUnrecorded(events: readonly NewEvent[], error: unknown): void {
    const types = events.map((e) => e.type).join(", ");
    const reason = error instanceof Error ? error.message : String(error);
    this.#deps.onWarning?.(`VM '${this.view.name}': could not record ${types}: ${reason}`);
  }

  #observe(events: NewEvent[], spontaneous = false): void {
    this.#recorder.record(events, this.#metadataNow(spontaneous)).then(
      (stored) => this.#actor.send({ type: "RECORDED", events: stored }),
      (error) => {
        this.#observationError ??= error;
        this.#warnUnrecorded(events, error);
      },
    );
  }

  /**
   * Runs `work` as this VM's one mutating operation (after any operation in flight), with what
   * it needs to act and record: the view, the live QMP session when the VM runs, and `record`,
   * which appends facts to the VM's stream in order and applies them to the view.
   * For features built on the VM actor (snapshots, disk operations...).
   */
  exclusive<T>(work: (access: VmAccess) => Promise<T>, scope?: OperationScope): Promise<T> {
    return this.#exclusive("exclusive", scope, () => this.#withAccess(work));
  }

  #withAccess<T>(work: (access: VmAccess) => Promise<T>): Promise<T> {
    const snapshot = this.#actor.getSnapshot();
    const session = snapshot.context.session;
    const metadata = this.#metadataNow();
    return work({
      view: this.view,
      running: snapshot.matches("running") && session !== undefined && !session.isClosed,
      session: session?.isClosed ? undefined : session,
      ports: this.#deps.ports,
      record: async (events) => {
        const stored = await this.#recorder.record(events, metadata);
        this.#actor.send({ type: "RECORDED", events: stored });
        return stored;
      },
    });
  }

  /** Waits for pending records, stops watching and closes QMP. QEMU keeps running (crash-only). */
  async close(): Promise<void> {
    await this.#lock.catch(() => undefined);
    await this.#recorder.flush();
    const session = this.#actor.getSnapshot().context.session;
    this.#actor.stop();
    await session?.close().catch(() => undefined);
    clearInterval(this.#leaseTimer);
    await this.#deps.ports.leases.release(this.view.vmId).catch(() => undefined);
  }

  /** Resolves once every recorded observation is in the store; rethrows a failed one. */
  async flush(): Promise<void> {
    await this.#recorder.flush();
    const error = this.#observationError;
    this.#observationError = undefined;
    if (error !== undefined) throw error;
  }

  #nextOp(): string {
    this.#opCounter += 1;
    return `${this.view.vmId}:${this.#opCounter}`;
  }

  #command(command: VmCommand, scope: OperationScope | undefined, preflight?: () => Promise<void>): Promise<VmOutcome> {
    return this.#exclusive(command.type.toLowerCase(), scope, async () => {
      await preflight?.();
      const snapshot = this.#actor.getSnapshot();
      if (snapshot.status !== "active" || !snapshot.can(command)) {
        throw new MaqetError(
          "VM_INVALID_STATE",
          `VM '${this.view.name}' cannot ${command.type.toLowerCase()} now: it is ${this.view.status}.`,
        );
      }
      this.#actor.send(command);
      const done = await waitFor(
        this.#actor,
        (s) => s.context.outcome?.opId === command.opId || s.status !== "active",
        { timeout: Number.POSITIVE_INFINITY },
      );
      const outcome = done.context.outcome;
      if (outcome?.opId !== command.opId) {
        throw new MaqetError("INTERNAL", `VM '${this.view.name}': ${command.type} ended without an outcome.`);
      }
      if (!outcome.ok) throw outcome.error;
      await this.flush();
      return outcome;
    });
  }

  /**
   * Runs `run` as this VM's one operation, after those called before it (FIFO), once the machine
   * has settled (no transition of a QEMU event in flight, so what it records is not this
   * operation's). A caller that has to wait is told through its scope's `onWait`.
   */
  #exclusive<T>(operation: string, scope: OperationScope | undefined, run: () => Promise<T>): Promise<T> {
    const entry = { operation, correlationId: scope?.metadata.correlationId, ...userOf(scope), since: 0, scope };
    const holder = this.busy?.holder;
    const ahead = this.#queue.length;
    this.#queue.push(entry);
    const waited = holder ? scope?.onWait?.(this.view.name, holder, ahead) : undefined;
    const guarded = async (): Promise<T> => {
      waited?.();
      await this.#settled();
      entry.since = this.#deps.ports.clock.now();
      this.#current = scope;
      try {
        return await run();
      } finally {
        this.#current = undefined;
        this.#queue.splice(this.#queue.indexOf(entry), 1);
      }
    };
    const next = this.#lock.then(guarded, guarded);
    this.#lock = next.catch(() => undefined);
    return next;
  }

  async #settled(): Promise<void> {
    await waitFor(this.#actor, (s) => s.matches("stopped") || s.matches("running") || s.status !== "active", {
      timeout: Number.POSITIVE_INFINITY,
    });
  }
}

async function isRunning(session: QmpSession): Promise<boolean> {
  const status = await session.execute<{ running?: boolean }>("query-status").catch(() => undefined);
  return status?.running !== false;
}

function userOf(scope: OperationScope | undefined): { user?: string } {
  const user = scope?.metadata.actor?.user;
  return typeof user === "string" ? { user } : {};
}
