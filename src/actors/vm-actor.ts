/**
 * One VM, live: the XState machine wired to real effects (vm-effects.ts), its facts' recorder
 * (vm-fact-log.ts), and a lock so only one mutating operation runs at a time (operation-queue.ts:
 * the actor is the lock). Created by rehydrating from the VM's stream; a VM whose QEMU still runs
 * is reattached, one whose QEMU vanished gets the fact recorded. Its types are in
 * vm-actor-types.ts, a recorded QMP command in recorded-qmp-call.ts, a live migration in
 * src/actors/migration/.
 *
 * @example
 * ```ts
 * const vm = await VmActor.load({ ports, store }, vmId);
 * await vm.start({ timeoutMs: 30000 });
 * await vm.qmp("query-status");
 * await vm.stop({ force: false, timeoutMs: 30000 });
 * ```
 */
import { type Actor, createActor, waitFor } from "xstate";
import { MaqetError } from "../errors/maqet-error.ts";
import { vmEvent, vmStreamId } from "../events/vm-events.ts";
import { preflightLaunch } from "./launch-qemu.ts";
import { keepLease } from "./lease-keeper.ts";
import { isGuestRunning } from "./migration/migration-qmp.ts";
import { OperationQueue } from "./operation-queue.ts";
import type { LockHolder, OperationScope } from "./operation-scope.ts";
import type { LeaseHolder, QmpExecuteOptions } from "./ports.ts";
import { decideQmp, type QmpDecision, qmpRefusedError } from "./qmp-policy.ts";
import { executeRecorded } from "./recorded-qmp-call.ts";
import { StreamRecorder } from "./stream-recorder.ts";
import {
  DEFAULT_START_TIMEOUT_MS,
  DEFAULT_STOP_TIMEOUT_MS,
  type MigrationAccess,
  type StopOptions,
  type VmAccess,
  type VmActorDeps,
} from "./vm-actor-types.ts";
import { provideVmEffects } from "./vm-effects.ts";
import { VmFactLog } from "./vm-fact-log.ts";
import type { VmCommand, VmOutcome, vmMachine } from "./vm-machine.ts";
import { foldVmEvents, type VmView } from "./vm-view.ts";
import { awaitStartCondition, sshEndpoint, type WaitCondition } from "./wait-condition.ts";

export * from "./vm-actor-types.ts";

type VmMachineActor = Actor<typeof vmMachine>;

export class VmActor {
  readonly #actor: VmMachineActor;
  readonly #facts: VmFactLog;
  readonly #deps: VmActorDeps;
  readonly #operations: OperationQueue;
  #opCounter = 0;
  /** The scope whose events are being recorded now: the holder's once it runs, the loader's while loading. */
  #current: OperationScope | undefined;
  #leaseTimer: ReturnType<typeof setInterval> | undefined;

  private constructor(deps: VmActorDeps, view: VmView, recoveredFrom?: LeaseHolder) {
    this.#deps = deps;
    this.#facts = new VmFactLog(new StreamRecorder(deps.store, view.streamId, view.version), {
      current: () => this.#current,
      apply: (events) => this.#actor.send({ type: "RECORDED", events }),
      vmName: () => this.view.name,
      onWarning: deps.onWarning,
    });
    this.#operations = new OperationQueue(() => this.view.name, deps.ports.clock);
    const machine = provideVmEffects(deps.ports, {
      record: (input) => this.#facts.recordForMachine(input),
      observe: (input) => this.#facts.observeForMachine(input),
      onStopStep: (step, waitMs, recorded) => {
        if (step !== recorded) this.#facts.observe([vmEvent("vm.stop-step", { step })]);
        this.#current?.onStep?.(this.view.name, { operation: "vm.stop", step, waitMs, pid: this.view.pid });
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
      // Renewed while this actor lives (holders on other hosts are judged by it).
      vm.#leaseTimer = keepLease(deps.ports.leases, vmId);
      return vm;
    } catch (error) {
      await deps.ports.leases.release(vmId).catch(() => undefined);
      throw error;
    }
  }

  /**
   * True once an append was refused because another writer moved the stream: this actor's
   * picture is out of date and the orchestrator replaces it with a fresh one.
   */
  get stale(): boolean {
    return this.#facts.conflicted || this.#migratedAway;
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
    return this.#operations.busy;
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
    await this.#exclusive(`start (waiting for ${waitFor.kind})`, scope, () =>
      this.#withAccess((access) => awaitStartCondition(access, waitFor, { deadline, timeoutMs, scope })),
    );
    return outcome;
  }

  stop(options: StopOptions = {}, scope?: OperationScope): Promise<VmOutcome> {
    return this.#stopCommand("STOP", options, scope);
  }

  remove(options: StopOptions = {}, scope?: OperationScope): Promise<VmOutcome> {
    return this.#stopCommand("REMOVE", options, scope);
  }

  #stopCommand(type: "STOP" | "REMOVE", options: StopOptions, scope: OperationScope | undefined): Promise<VmOutcome> {
    const force = options.force ?? false;
    const timeoutMs = options.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    return this.#command({ type, opId: this.#nextOp(), force, timeoutMs }, scope);
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
    return this.#exclusive(`qmp ${command}`, options.scope, () => {
      const { session } = this.#running(
        (name) => `VM '${name}' is not running (state: ${this.view.status}). Start it with \`maqet start ${name}\`.`,
      );
      return executeRecorded<T>({
        command,
        args,
        options,
        decision,
        session,
        clock: this.#deps.ports.clock,
        tainted: this.view.taint !== undefined,
        facts: this.#facts,
      });
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
      const metadata = this.#facts.metadataNow();
      const access: MigrationAccess = {
        view: this.view,
        session,
        ports: this.#deps.ports,
        wasRunning,
        moved: false,
        record: (events) => this.#facts.recordApplied(events, metadata),
        adopt: (events) => this.#facts.adopt(events),
      };
      this.#actor.send({ type: "MIGRATION.BEGIN" });
      try {
        return await run(access);
      } finally {
        if (access.moved) this.#migratedAway = true;
        const running = access.moved ? false : await isGuestRunning(session);
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
    const metadata = this.#facts.metadataNow();
    return work({
      view: this.view,
      running: snapshot.matches("running") && session !== undefined && !session.isClosed,
      session: session?.isClosed ? undefined : session,
      ports: this.#deps.ports,
      record: (events) => this.#facts.recordApplied(events, metadata),
    });
  }

  /** Waits for pending records, stops watching and closes QMP. QEMU keeps running (crash-only). */
  async close(): Promise<void> {
    await this.#operations.idle();
    await this.#facts.settle();
    const session = this.#actor.getSnapshot().context.session;
    this.#actor.stop();
    await session?.close().catch(() => undefined);
    clearInterval(this.#leaseTimer);
    await this.#deps.ports.leases.release(this.view.vmId).catch(() => undefined);
  }

  /** Resolves once every recorded observation is in the store; rethrows a failed one. */
  flush(): Promise<void> {
    return this.#facts.flush();
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
    return this.#operations.run(
      operation,
      scope,
      () => this.#settled(),
      async () => {
        this.#current = scope;
        try {
          return await run();
        } finally {
          this.#current = undefined;
        }
      },
    );
  }

  async #settled(): Promise<void> {
    await waitFor(this.#actor, (s) => s.matches("stopped") || s.matches("running") || s.status !== "active", {
      timeout: Number.POSITIVE_INFINITY,
    });
  }
}
