/**
 * How a VM actor's facts reach its stream: in order (one StreamRecorder), under the running
 * operation's metadata, or a correlation id of their own for what QEMU or the guest did
 * spontaneously; observations (a pause, a stop step) recorded without holding the machine up,
 * held back during a QMP command so the command's own fact goes first, and a failed one surfaced
 * by the next {@link VmFactLog.flush}.
 *
 * @example
 * ```ts
 * const facts = new VmFactLog(recorder, { current: () => scope, apply, vmName: () => "web", onWarning });
 * facts.observe([vmEvent("vm.paused", { detail: "user", reason: "paused" })]);
 * await facts.flush(); // in the store, or the recording's error
 * ```
 */
import type { EventMetadata, NewEvent, StoredEvent } from "../events/envelope.ts";
import type { OperationScope } from "./operation-scope.ts";
import type { StreamRecorder } from "./stream-recorder.ts";
import type { RecordInput } from "./vm-machine.ts";

export interface VmFactLogHooks {
  /** The scope whose events are being recorded now (undefined: no operation runs). */
  current(): OperationScope | undefined;
  /** Applies recorded events to the machine's view. */
  apply(events: StoredEvent[]): void;
  vmName(): string;
  /** Told when a fact no operation waits for could not be recorded. */
  onWarning?: (message: string) => void;
}

export class VmFactLog {
  readonly #recorder: StreamRecorder;
  readonly #hooks: VmFactLogHooks;
  /** Observations (pause/resume) that could not be recorded; surfaced by the next operation. */
  #observationError: unknown;
  /** Observations made while a QMP command runs, recorded right after the command's own fact. */
  #held: NewEvent[] | undefined;

  constructor(recorder: StreamRecorder, hooks: VmFactLogHooks) {
    this.#recorder = recorder;
    this.#hooks = hooks;
  }

  /** True once an append was refused because another writer moved the stream. */
  get conflicted(): boolean {
    return this.#recorder.conflicted;
  }

  /**
   * The metadata of the events recorded now: the running operation's, or, for what QEMU or the
   * guest did on its own (`spontaneous`: a crash, a guest reset or power-off, even while some
   * operation holds the VM; or anything seen with no operation running), a fresh correlation id
   * of its own: nobody's operation caused it.
   */
  metadataNow(spontaneous = false): Partial<EventMetadata> {
    return (spontaneous ? undefined : this.#hooks.current()?.metadata) ?? { correlationId: crypto.randomUUID() };
  }

  /** Appends `events` (under the metadata of now unless given); the caller applies them. */
  record(events: readonly NewEvent[], metadata = this.metadataNow()): Promise<StoredEvent[]> {
    return this.#recorder.record(events, metadata);
  }

  /** Appends `events` and applies them to the view. */
  async recordApplied(events: readonly NewEvent[], metadata: Partial<EventMetadata>): Promise<StoredEvent[]> {
    const stored = await this.#recorder.record(events, metadata);
    this.#hooks.apply(stored);
    return stored;
  }

  /** Events appended through another path (a migration's placement transaction), applied. */
  adopt(events: readonly StoredEvent[]): void {
    this.#recorder.adopt(events);
    this.#hooks.apply([...events]);
  }

  /** The machine's `record` effect: a fact nobody waits for that fails is also warned about. */
  async recordForMachine(input: RecordInput): Promise<StoredEvent[]> {
    const unprompted = input.spontaneous === true || this.#hooks.current() === undefined;
    try {
      return await this.#recorder.record(input.events, this.metadataNow(input.spontaneous));
    } catch (error) {
      if (unprompted) this.#warnUnrecorded(input.events, error);
      throw error;
    }
  }

  /** The machine's `observe` action. */
  observeForMachine(input: RecordInput): void {
    // During a QMP command its own fact goes first: cause before effect in the history.
    // What the guest did on its own is no command's effect: recorded at once, as its own.
    if (input.spontaneous) this.observe(input.events, true);
    else if (this.#held) this.#held.push(...input.events);
    else this.observe(input.events);
  }

  /** Records without waiting, applies once stored; a failure is kept for {@link flush}. */
  observe(events: NewEvent[], spontaneous = false): void {
    this.#recorder.record(events, this.metadataNow(spontaneous)).then(
      (stored) => this.#hooks.apply(stored),
      (error) => {
        this.#observationError ??= error;
        this.#warnUnrecorded(events, error);
      },
    );
  }

  /** Runs `work` (a QMP command) with the machine's non-spontaneous observations held until it ends. */
  async holdingObservations<T>(work: () => Promise<T>): Promise<T> {
    this.#held = [];
    try {
      return await work();
    } finally {
      const held = this.#held;
      this.#held = undefined;
      if (held.length) this.observe(held);
    }
  }

  /** Resolves once every recorded fact is in the store (failed ones included). */
  async settle(): Promise<void> {
    await this.#recorder.flush();
  }

  /** Resolves once every recorded observation is in the store; rethrows a failed one. */
  async flush(): Promise<void> {
    await this.#recorder.flush();
    const error = this.#observationError;
    this.#observationError = undefined;
    if (error !== undefined) throw error;
  }

  #warnUnrecorded(events: readonly NewEvent[], error: unknown): void {
    const types = events.map((e) => e.type).join(", ");
    const reason = error instanceof Error ? error.message : String(error);
    this.#hooks.onWarning?.(`VM '${this.#hooks.vmName()}': could not record ${types}: ${reason}`);
  }
}
