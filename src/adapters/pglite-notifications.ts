/**
 * LISTEN on the embedded PGlite: its in-process `listen`, called while holding the Kysely
 * driver's single connection, so the LISTEN never lands inside another caller's open
 * transaction (PGlite is one session; a LISTEN inside a transaction that rolls back is undone).
 * Notifications arrive in-process when the notifying statement (or its transaction) commits.
 *
 * @example
 * ```ts
 * const { db, pglite } = await openPgliteDatabase({ dataDir });
 * new PostgresEventStore(db, { notifications: createPgliteNotificationSource(pglite, db) });
 * ```
 */
import type { Kysely } from "kysely";
import { Observable, share } from "rxjs";
import type { NotificationSource, Wakeup } from "../events/notifications.ts";

/** The part of PGlite this adapter calls. */
export interface PgliteListener {
  listen(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>>;
  readonly closed: boolean;
}

/**
 * A {@link NotificationSource} on one PGlite instance; `db` is the Kysely instance over it.
 *
 * @example
 * ```ts
 * const source = createPgliteNotificationSource(pglite, db);
 * ```
 */
export function createPgliteNotificationSource(
  pglite: PgliteListener,
  // biome-ignore lint/suspicious/noExplicitAny: only db.connection() is used, whatever the tables
  db: Kysely<any>,
): NotificationSource {
  const channels = new Map<string, Observable<Wakeup>>();
  const unlistens = new Set<() => Promise<void>>();
  let closed = false;
  const onConnection = <T>(run: () => Promise<T>): Promise<T> => db.connection().execute(run);
  const stop = async (unlisten: () => Promise<void>): Promise<void> => {
    unlistens.delete(unlisten);
    if (pglite.closed) return;
    await onConnection(unlisten).catch(() => {}); // the database may be closing already
  };
  return {
    wakeups(channel) {
      let shared = channels.get(channel);
      if (shared === undefined) {
        shared = new Observable<Wakeup>((subscriber) => {
          let active = true;
          let unlisten: (() => Promise<void>) | undefined;
          if (!closed) {
            onConnection(() =>
              pglite.listen(channel, (payload) => {
                if (active) subscriber.next({ reason: "notification", payload });
              }),
            ).then(
              (stopListening) => {
                unlisten = stopListening;
                unlistens.add(stopListening);
                if (!active) void stop(stopListening);
                else subscriber.next({ reason: "listening" });
              },
              () => {}, // no LISTEN: subscriptions still poll
            );
          }
          return () => {
            active = false;
            if (unlisten) void stop(unlisten);
          };
        }).pipe(share());
        channels.set(channel, shared);
      }
      return shared;
    },
    async close() {
      closed = true;
      await Promise.all([...unlistens].map(stop));
    },
  };
}
