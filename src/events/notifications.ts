/**
 * The port for LISTEN/NOTIFY: where subscriptions get their wake-ups. Implemented in
 * src/adapters (a dedicated `pg` connection with reconnect for a server, PGlite's in-process
 * `listen` for the embedded store); the core never imports a driver.
 *
 * A wake-up is only a hint that something may be readable. Subscriptions read the store to learn
 * what; they also poll on a timer, so a lost notification or a dead connection only delays.
 *
 * @example
 * ```ts
 * const source: NotificationSource = createPgNotificationSource({ url });
 * const sub = source.wakeups("maqet_events").subscribe((w) => console.log(w.reason));
 * ```
 */
import type { Observable } from "rxjs";
import { abortableSleep } from "../util/abortable-sleep.ts";

export type Wakeup =
  /** A NOTIFY arrived on the channel (the payload is the appended stream's id). */
  | { readonly reason: "notification"; readonly payload: string }
  /** Listening (again) after connecting or reconnecting: notifications sent meanwhile are lost, so re-read. */
  | { readonly reason: "listening" };

export interface NotificationSource {
  /**
   * Wake-ups on `channel` for as long as the observable is subscribed. Emits `listening` once
   * LISTEN is in effect (and again after every reconnect), then one `notification` per NOTIFY.
   * Never errors: a lost connection is retried with back-off. Unsubscribing the last subscriber
   * stops listening (and closes the connection it opened).
   */
  wakeups(channel: string): Observable<Wakeup>;
  /** Stops everything and closes what the source opened. Idempotent. */
  close(): Promise<void>;
}

/** The part of a clock the store needs: an abortable sleep (the Clock port satisfies it). */
export interface SleepClock {
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * A {@link SleepClock} on the web-standard `setTimeout`; rejects with the abort reason.
 *
 * @example
 * ```ts
 * await timerClock.sleep(10);
 * ```
 */
export const timerClock: SleepClock = { sleep: abortableSleep };
