/**
 * Named crash points: every place a maqet process writes something outside the event store, or
 * sits between two writes that belong together. A test-only hook kills the process at one of
 * them (the CLI reads `MAQET_CRASH_AT=<point>` once and passes it in as `crashAt`; the library
 * takes `createMaqet({ crashAt })`); the crash-point test (test/qemu/crash-points.qemu.test.ts)
 * kills a process at each and checks that the next command recovers. Inert unless set.
 *
 * This registry is the one list: docs/crash-points.md must list exactly these names (the test
 * compares them) and no crash-hook call in src/ may name another. New code that adds a
 * two-step write adds its point here, a line in the docs and a scenario in the test.
 *
 * @example
 * ```ts
 * function write(crash: CrashHook) {
 *   // ... first write ...
 *   crash("lock.temp-written");
 *   // ... second write ...
 * }
 * ```
 */

/** Each point, with what is on disk (and in the store) when a process dies there. */
export const CRASH_POINTS = {
  "lock.temp-written":
    "The lock's complete content is in a temporary file next to pglite.lock; pglite.lock itself is not there yet.",
  "lock.linked": "pglite.lock is in place (linked from the temporary file); the temporary file is not removed yet.",
  "lock.takeover-guarded": "A taker holds pglite.lock.takeover and judged the lock stale; nothing removed yet.",
  "lock.stale-removed": "The stale pglite.lock is removed; the taker's pglite.lock.takeover is still there.",
  "store.data-dir-created": "The embedded store's data directory was created, empty; PGlite has not initialised it.",
  "start.requested": "vm.start-requested is recorded; nothing is launched yet.",
  "start.disk-created": "qemu-img created a drive's image at the VM's first start; disk.created is not recorded.",
  "start.spawned": "QEMU is spawned (paused by -S, writing its pidfile); vm.started is not recorded.",
  "start.resumed": "QEMU answered QMP and the guest runs (cont); vm.started is not recorded.",
  "stop.requested": "vm.stop-requested is recorded; no stop step was taken.",
  "stop.quit-sent": "QMP quit was sent; QEMU's exit is not yet seen.",
  "stop.exited": "QEMU has exited; vm.stopped is not recorded.",
  "snapshot.requested": "snapshot.<op>-requested is recorded; the images are untouched.",
  "snapshot.job-started": "Live: the QMP snapshot job was started in QEMU and runs on; its end is not seen.",
  "snapshot.applied": "qemu-img (offline) or the QMP job (live) finished; snapshot.<outcome> is not recorded.",
  "migrate.transfer":
    "Migration: vm.migration-target-prepared is recorded (the destination QEMU listens); the source has not sent `migrate`.",
  "migrate.switchover":
    "Migration: the source QEMU is paused at pre-switchover; ownership has not moved (vm.migration-switchover is not recorded: it goes with the commit).",
  "migrate.committed":
    "Migration: vm.owner-changed is recorded (the commit point); the source QEMU still waits at pre-switchover (no migrate-continue).",
  "migrate.finishing":
    "Migration: the destination has the whole state (QEMU completed) and is paused; it is not resumed, the source not ended, vm.migrated not recorded.",
  "projection.batch-written":
    "A projection batch's rows are written inside its transaction; the checkpoint and the commit are not.",
} as const;

/** The name of one crash point. */
export type CrashPoint = keyof typeof CRASH_POINTS;

/** Called at each crash point; the real one (src/adapters/crash-hook.ts) kills the process at the chosen point. */
export type CrashHook = (point: CrashPoint) => void;

/**
 * The hook that does nothing: the default everywhere.
 *
 * @example
 * ```ts
 * const crash: CrashHook = options.crash ?? noCrash;
 * ```
 */
export const noCrash: CrashHook = () => {};

/**
 * True for a registered point name.
 *
 * @example
 * ```ts
 * isCrashPoint("lock.linked"); // true
 * ```
 */
export function isCrashPoint(name: string): name is CrashPoint {
  return Object.hasOwn(CRASH_POINTS, name);
}
