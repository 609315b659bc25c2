/**
 * LISTEN on a PostgreSQL server: one dedicated connection per channel (not from the pool: a
 * pooled connection changes hands, and transaction-mode poolers drop LISTEN), shared by every
 * subscription of the store, opened on the first subscriber and closed with the last.
 *
 * A dropped connection (server restart, `pg_terminate_backend`, network) is reconnected with
 * back-off (100 ms doubling to 5 s), and `listening` is emitted again after each reconnect so
 * subscribers re-read: notifications sent while nobody listened are gone, the rows are not.
 * TCP keep-alive is on so a silently dead peer is noticed; until then polling covers it.
 *
 * @example
 * ```ts
 * const source = createPgNotificationSource({ url: "postgres://maqet@db/maqet" });
 * const sub = source.wakeups("maqet_events").subscribe((w) => console.log(w));
 * sub.unsubscribe();
 * await source.close();
 * ```
 */
import type { Client } from "pg";
import { Observable, type Subscriber, share } from "rxjs";
import type { NotificationSource, SleepClock, Wakeup } from "../events/notifications.ts";
import { timerClock } from "../events/notifications.ts";

export interface PgNotificationOptions {
  /** A libpq connection URL. */
  url: string;
  /** Shown in `pg_stat_activity` (default "maqet-listen"): how operators and tests find it. */
  applicationName?: string;
  clock?: SleepClock;
  /** Reconnect back-off: first delay and ceiling (defaults 100 ms and 5 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Called with each connection failure (for logs); never required. */
  onError?: (error: unknown) => void;
}

/**
 * A {@link NotificationSource} on a dedicated `pg` connection per channel.
 *
 * @example
 * ```ts
 * new PostgresEventStore(db, { notifications: createPgNotificationSource({ url }) });
 * ```
 */
export function createPgNotificationSource(options: PgNotificationOptions): NotificationSource {
  const channels = new Map<string, Observable<Wakeup>>();
  const loops = new Set<Promise<void>>();
  const stopAll = new AbortController();
  return {
    wakeups(channel) {
      let shared = channels.get(channel);
      if (shared === undefined) {
        shared = new Observable<Wakeup>((subscriber) => {
          const stop = new AbortController();
          const onStopAll = () => stop.abort();
          stopAll.signal.addEventListener("abort", onStopAll, { once: true });
          const loop = listenLoop(channel, subscriber, stop.signal, options).finally(() => {
            loops.delete(loop);
            stopAll.signal.removeEventListener("abort", onStopAll);
          });
          loops.add(loop);
          return () => stop.abort();
        }).pipe(share());
        channels.set(channel, shared);
      }
      return shared;
    },
    async close() {
      stopAll.abort();
      await Promise.all([...loops]);
    },
  };
}

async function listenLoop(
  channel: string,
  subscriber: Subscriber<Wakeup>,
  signal: AbortSignal,
  options: PgNotificationOptions,
): Promise<void> {
  const clock = options.clock ?? timerClock;
  const minBackoff = options.minBackoffMs ?? 100;
  const maxBackoff = options.maxBackoffMs ?? 5_000;
  let backoff = minBackoff;
  const { default: pg } = await import("pg");
  while (!signal.aborted) {
    const client: Client = new pg.Client({
      connectionString: options.url,
      application_name: options.applicationName ?? "maqet-listen",
      keepAlive: true,
    });
    // 'error' must always have a listener, or a dropped connection kills the process.
    const lost = new Promise<void>((resolve) => {
      client.on("error", (error) => {
        options.onError?.(error);
        resolve();
      });
      client.on("end", () => resolve());
    });
    const stopped = new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    try {
      await Promise.race([client.connect(), lost.then(() => Promise.reject(new Error("connection lost")))]);
      client.on("notification", (n) => {
        if (n.channel === channel) subscriber.next({ reason: "notification", payload: n.payload ?? "" });
      });
      await client.query(`listen ${quoteIdent(channel)}`);
      backoff = minBackoff;
      if (!signal.aborted) subscriber.next({ reason: "listening" });
      await Promise.race([lost, stopped]);
    } catch (error) {
      options.onError?.(error);
    } finally {
      await client.end().catch(() => {});
    }
    if (signal.aborted) return;
    await clock.sleep(backoff, signal).catch(() => {});
    backoff = Math.min(backoff * 2, maxBackoff);
  }
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
