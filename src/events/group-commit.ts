/**
 * Group commit: requests that arrive while a group is being written wait, and go together in the
 * next group, one transaction, one commit (one WAL flush on a server). A request that arrives
 * while nothing is being written goes at once, alone: a lone append waits for nothing. The wait
 * is bounded: when the groups in flight have not finished `maxWaitMs` after the last one started
 * (one waits on a row lock another process holds, say), the queue goes as a new group beside
 * them, up to `maxInFlight` groups at once; a group takes at most `maxGroup` requests.
 *
 * The runner answers each request of a group on its own ({@link Settled}): one request's failure
 * never fails another. Only when the runner itself throws (the group's transaction failed as a
 * whole, e.g. the connection dropped) does every request of that group get that error.
 *
 * @example
 * ```ts
 * const groups = new GroupCommitter<string, number>(async (batch) => batch.map((s) => ({ ok: true, value: s.length })));
 * const [a, b] = await Promise.all([groups.submit("vm-1"), groups.submit("vm-22")]); // 4, 5
 * ```
 */

/** One request's answer from a group's runner. */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

export interface GroupCommitOptions {
  /** Requests in one group, at most (default 64). */
  maxGroup?: number;
  /** Groups being written at once, at most (default 4; a single-session database: 1). */
  maxInFlight?: number;
  /** A queued request waits this long for the groups in flight before it goes beside them (default 5 ms). */
  maxWaitMs?: number;
}

interface Waiting<Q, R> {
  request: Q;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Collects requests into groups and runs each group through one call of `run`.
 *
 * @example
 * ```ts
 * const committer = new GroupCommitter(runGroup, { maxGroup: 32 });
 * const outcome = await committer.submit(request);
 * ```
 */
export class GroupCommitter<Q, R> {
  readonly #run: (batch: readonly Q[]) => Promise<ReadonlyArray<Settled<R>>>;
  readonly #maxGroup: number;
  readonly #maxInFlight: number;
  readonly #maxWaitMs: number;
  #queue: Array<Waiting<Q, R>> = [];
  #inFlight = 0;
  #lastStart = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `run` writes one group and answers each of its requests, in order. */
  constructor(run: (batch: readonly Q[]) => Promise<ReadonlyArray<Settled<R>>>, options: GroupCommitOptions = {}) {
    this.#run = run;
    this.#maxGroup = Math.max(1, options.maxGroup ?? 64);
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? 4);
    this.#maxWaitMs = Math.max(0, options.maxWaitMs ?? 5);
  }

  /** Groups being written now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Queues `request`; it is written in the next group (at once when nothing is in flight). */
  submit(request: Q): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      if (this.#inFlight === 0) this.#next();
      else this.#arm();
    });
  }

  /** Starts a group beside those in flight once the last one has run `maxWaitMs` (if room). */
  #arm(): void {
    if (this.#timer !== undefined || this.#inFlight >= this.#maxInFlight) return;
    const wait = Math.max(0, this.#lastStart + this.#maxWaitMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#inFlight < this.#maxInFlight) this.#next();
    }, wait);
  }

  #next(): void {
    if (this.#queue.length === 0) return;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const group = this.#queue.splice(0, this.#maxGroup);
    this.#inFlight++;
    this.#lastStart = Date.now();
    void this.#write(group).finally(() => {
      this.#inFlight--;
      this.#next();
      if (this.#queue.length > 0) this.#arm();
    });
    // Those still queued (maxGroup reached) get the next group beside this one maxWaitMs from now.
    if (this.#queue.length > 0) this.#arm();
  }

  async #write(group: Array<Waiting<Q, R>>): Promise<void> {
    let answers: ReadonlyArray<Settled<R>>;
    try {
      answers = await this.#run(group.map((w) => w.request));
      if (answers.length !== group.length) {
        throw new Error(`group commit: ${answers.length} answers for ${group.length} requests`);
      }
    } catch (error) {
      for (const w of group) w.reject(error);
      return;
    }
    group.forEach((w, i) => {
      const answer = answers[i]!;
      if (answer.ok) w.resolve(answer.value);
      else w.reject(answer.error);
    });
  }
}
