/**
 * Wake-ups for other processes' subscriptions, sent after an append committed rather than inside
 * its transaction, and coalesced: at most one notify statement in flight per store; streams
 * appended to meanwhile go out together in the next one.
 *
 * Why not `pg_notify` in the append's transaction: PostgreSQL takes a database-wide lock when a
 * notifying transaction commits and holds it through the commit's WAL flush, so concurrent
 * writers on different streams queue behind each other (measured: 8 writers at 0.2x of 8 plain
 * inserting clients). A statement that only notifies writes no WAL and commits without a flush.
 *
 * A wake-up is never the truth (subscriptions poll; docs/events.md): a failed or lost
 * notification delays another process's delivery until its next poll and loses nothing, so
 * failures are counted, not thrown.
 *
 * @example
 * ```ts
 * const notifier = new CommitNotifier((ids) => notifyStreams(db, ids));
 * notifier.poke("vm-1"); // after vm-1's append committed
 * await notifier.close();
 * ```
 */
export class CommitNotifier {
  readonly #send: (streamIds: string[]) => Promise<void>;
  readonly #pending = new Set<string>();
  #draining: Promise<void> | undefined;
  #failures = 0;
  #closed = false;

  /** `send` notifies the given stream ids (one statement). */
  constructor(send: (streamIds: string[]) => Promise<void>) {
    this.#send = send;
  }

  /** Notifications that could not be sent (other processes then learn by polling). */
  get failures(): number {
    return this.#failures;
  }

  /** Schedules a wake-up for `streamId`; returns at once. Ignored after {@link close}. */
  poke(streamId: string): void {
    if (this.#closed) return;
    this.#pending.add(streamId);
    this.#draining ??= this.#drain();
  }

  /** Sends what is pending, then refuses further pokes. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#draining;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.size > 0) {
        const ids = [...this.#pending];
        this.#pending.clear();
        try {
          await this.#send(ids);
        } catch {
          this.#failures++;
        }
      }
    } finally {
      this.#draining = undefined;
    }
  }
}
