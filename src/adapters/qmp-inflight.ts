/**
 * The QMP requests a session has sent and not yet seen answered, in send order. A reply settles
 * its request by `id`; a reply we do not know, or no longer wait for (timed out, aborted: the
 * slot is kept so its late reply is recognised), is dropped; an error without an id (QEMU could
 * not parse a request) belongs to the oldest request, since QEMU answers in order.
 *
 * @example
 * ```ts
 * const inflight = new QmpInflight(socketPath);
 * const id = inflight.nextId();
 * inflight.add(id, { command: "query-status", resolve, reject, cleanup });
 * inflight.reply({ return: { status: "running" }, id }); // resolves it
 * ```
 */
import { idlessError, QmpCommandError } from "./qmp-errors.ts";
import { qmpErrorFields } from "./qmp-messages.ts";

/** One request waiting for its reply; `cleanup` clears its timer and abort listener. */
export interface Pending {
  command: string;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  cleanup(): void;
}

export class QmpInflight {
  readonly #socketPath: string;
  /** Requests sent and not yet answered, in send order; null = abandoned, drop its reply. */
  readonly #requests = new Map<string, Pending | null>();
  #lastId = 0;

  constructor(socketPath: string) {
    this.#socketPath = socketPath;
  }

  /** A fresh request id (`maqet-1`, `maqet-2`...). */
  nextId(): string {
    return `maqet-${++this.#lastId}`;
  }

  add(id: string, pending: Pending): void {
    this.#requests.set(id, pending);
  }

  /** A reply (`return` or `error`) from QEMU: settles the request it answers, if any. */
  reply(msg: Record<string, unknown>): void {
    if (!("id" in msg)) {
      if ("error" in msg) this.#idlessError(msg.error);
      return;
    }
    const id = msg.id;
    if (typeof id !== "string" || !this.#requests.has(id)) return; // not ours: drop
    const pending = this.#requests.get(id);
    this.#requests.delete(id);
    if (!pending) return; // timed out or aborted earlier
    pending.cleanup();
    if ("error" in msg) {
      const { errorClass, desc } = qmpErrorFields(msg.error);
      pending.reject(new QmpCommandError(pending.command, errorClass, desc, this.#socketPath));
    } else pending.resolve(msg.return);
  }

  #idlessError(error: unknown): void {
    const oldest = this.#requests.entries().next();
    if (oldest.done) return;
    const [id, pending] = oldest.value;
    this.#requests.delete(id);
    if (!pending) return;
    pending.cleanup();
    const { errorClass, desc } = qmpErrorFields(error);
    pending.reject(idlessError(this.#socketPath, pending.command, errorClass, desc));
  }

  /** Stops waiting for `id` (the caller settles it); its reply will be dropped. */
  abandon(id: string): void {
    const pending = this.#requests.get(id);
    if (!pending) return;
    pending.cleanup();
    // Keep the slot so a late reply is recognised and dropped, and id-less errors stay aligned.
    this.#requests.set(id, null);
  }

  /** Removes request `id` for the caller to settle (undefined when unknown or abandoned). */
  take(id: string): Pending | undefined {
    const pending = this.#requests.get(id);
    if (!pending) return undefined;
    this.#requests.delete(id);
    pending.cleanup();
    return pending;
  }

  /** Hands every request still waiting to `settle`, and forgets them all. */
  drain(settle: (pending: Pending) => void): void {
    for (const pending of this.#requests.values()) {
      if (!pending) continue;
      pending.cleanup();
      settle(pending);
    }
    this.#requests.clear();
  }
}
