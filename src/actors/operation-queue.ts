/**
 * The one-at-a-time lock of a VM: operations run in the order they were called (FIFO), each
 * after the one before it settled (fulfilled or not). It knows who holds the VM and how many
 * wait, and tells a caller that has to wait through its scope's `onWait`.
 *
 * @example
 * ```ts
 * const queue = new OperationQueue(() => view.name, clock);
 * await queue.run("stop", scope, settled, () => stopIt());
 * queue.busy; // { holder: { operation: "stop", since, ... }, waiting: 0 } while it runs
 * ```
 */
import type { LockHolder, OperationScope } from "./operation-scope.ts";
import type { Clock } from "./ports.ts";

export class OperationQueue {
  readonly #vmName: () => string;
  readonly #clock: Clock;
  #lock: Promise<unknown> = Promise.resolve();
  /** The operation holding the VM first, then those waiting for it, in order (FIFO). */
  readonly #queue: Array<LockHolder & { scope?: OperationScope }> = [];

  constructor(vmName: () => string, clock: Clock) {
    this.#vmName = vmName;
    this.#clock = clock;
  }

  /** The operation holding the VM and how many wait behind it (undefined when idle). */
  get busy(): { holder: LockHolder; waiting: number } | undefined {
    const [head, ...rest] = this.#queue;
    if (head === undefined) return undefined;
    const { scope: _scope, ...holder } = head;
    return { holder, waiting: rest.length };
  }

  /**
   * Runs `work` after the operations queued before it, once `settle` resolved (its holding time
   * counts from then); leaves the queue when `work` settles.
   */
  run<T>(
    operation: string,
    scope: OperationScope | undefined,
    settle: () => Promise<void>,
    work: () => Promise<T>,
  ): Promise<T> {
    const entry = { operation, correlationId: scope?.metadata.correlationId, ...userOf(scope), since: 0, scope };
    const holder = this.busy?.holder;
    const ahead = this.#queue.length;
    this.#queue.push(entry);
    const waited = holder ? scope?.onWait?.(this.#vmName(), holder, ahead) : undefined;
    const guarded = async (): Promise<T> => {
      waited?.();
      await settle();
      entry.since = this.#clock.now();
      try {
        return await work();
      } finally {
        this.#queue.splice(this.#queue.indexOf(entry), 1);
      }
    };
    const next = this.#lock.then(guarded, guarded);
    this.#lock = next.catch(() => undefined);
    return next;
  }

  /** Resolves once every operation queued so far has settled. */
  async idle(): Promise<void> {
    await this.#lock.catch(() => undefined);
  }
}

function userOf(scope: OperationScope | undefined): { user?: string } {
  const user = scope?.metadata.actor?.user;
  return typeof user === "string" ? { user } : {};
}
