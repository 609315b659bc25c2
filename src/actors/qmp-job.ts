/**
 * Runs one QMP background job (`snapshot-save`, `snapshot-load`, `snapshot-delete`, QEMU ≥ 6)
 * to its end: listen for `JOB_STATUS_CHANGE` before sending the command (QEMU announces the job
 * before it answers), wait for `concluded`, read the outcome from `query-jobs` (a job's error is
 * reported there, never in the command's reply), then `job-dismiss` it. While it runs,
 * `query-jobs` is polled for progress.
 *
 * @example
 * ```ts
 * await runQmpJob(session, "snapshot-save", { tag: "s1", vmstate: "#block152", devices: ["#block152"] }, { clock });
 * ```
 */
import { filter, firstValueFrom } from "rxjs";
import { MaqetError } from "../errors/maqet-error.ts";
import type { Clock, QmpSession } from "./ports.ts";

export interface QmpJobOptions {
  clock: Clock;
  signal?: AbortSignal;
  /** Give up (cancel the job) after this long. Default 300 s (MAQET's snapshot limit). */
  timeoutMs?: number;
  /** How often to read progress from `query-jobs` (default 250 ms). */
  pollMs?: number;
  /** 0–100, never decreasing. */
  onProgress?: (percent: number) => void;
  /** Job id (default `maqet-<command>-<random>`). */
  jobId?: string;
  /** Called once QEMU accepted the job (it runs on even if this process dies now). */
  onStarted?: (id: string) => void;
  /**
   * Leave the concluded job in QEMU's job list (the caller dismisses it with {@link dismissQmpJob}
   * once the outcome is recorded): until then `query-jobs` still tells a later process how it
   * ended, should this one die first. Default false (dismissed at once).
   */
  keep?: boolean;
}

export interface QmpJobInfo {
  id: string;
  type?: string;
  status: string;
  "current-progress"?: number;
  "total-progress"?: number;
  error?: string;
}

export const DEFAULT_JOB_TIMEOUT_MS = 300_000;

/** Resolves with the job's final `query-jobs` entry; rejects with SNAPSHOT_FAILED quoting QEMU's error. */
export async function runQmpJob(
  session: QmpSession,
  command: string,
  args: Record<string, unknown>,
  options: QmpJobOptions,
): Promise<QmpJobInfo> {
  const { clock, signal } = options;
  const id = options.jobId ?? `maqet-${command}-${crypto.randomUUID().slice(0, 8)}`;
  const timeoutMs = options.timeoutMs ?? DEFAULT_JOB_TIMEOUT_MS;
  let lastPercent = -1;
  const report = (percent: number) => {
    const p = Math.max(0, Math.min(100, Math.floor(percent)));
    if (p > lastPercent) {
      lastPercent = p;
      options.onProgress?.(p);
    }
  };
  // Subscribed before the command is sent: QEMU emits `created` and `running` before its reply.
  const concluded = firstValueFrom(
    session.events$.pipe(
      filter((e) => e.event === "JOB_STATUS_CHANGE" && e.data?.id === id && e.data?.status === "concluded"),
    ),
  );
  concluded.catch(() => undefined);
  report(0);
  const started = clock.now();
  await session.execute(command, { "job-id": id, ...args }, { signal });
  options.onStarted?.(id);

  const stopPolling = new AbortController();
  const poll = (async () => {
    while (!stopPolling.signal.aborted) {
      await clock.sleep(options.pollMs ?? 250, stopPolling.signal).catch(() => undefined);
      if (stopPolling.signal.aborted) return;
      const job = await findJob(session, id).catch(() => undefined);
      const total = job?.["total-progress"] ?? 0;
      if (job && total > 0) report((100 * (job["current-progress"] ?? 0)) / total);
    }
  })();

  const timedOut = clock.sleep(timeoutMs, stopPolling.signal).then(
    () => "timeout" as const,
    () => "stopped" as const,
  );
  const aborted = new Promise<"aborted">((resolve) => {
    if (signal?.aborted) resolve("aborted");
    signal?.addEventListener("abort", () => resolve("aborted"), { once: true });
  });
  const closed = session.closed.then(() => "closed" as const);
  let outcome: "concluded" | "timeout" | "stopped" | "aborted" | "closed";
  try {
    outcome = await Promise.race([concluded.then(() => "concluded" as const), timedOut, aborted, closed]);
  } finally {
    stopPolling.abort();
    await poll;
  }
  if (outcome === "closed") {
    throw new MaqetError("QMP_DISCONNECTED", `QEMU closed the QMP connection while job ${id} (${command}) ran.`, {
      details: { job: id, command },
    });
  }
  if (outcome !== "concluded") {
    // Ask QEMU to stop it; a snapshot job may not be cancellable, so this is best effort.
    await session.execute("job-cancel", { id }).catch(() => undefined);
    if (outcome === "aborted") throw signal?.reason ?? new Error("aborted");
    throw new MaqetError(
      "TIMEOUT",
      `QMP job ${id} (${command}) did not finish within ${timeoutMs} ms; maqet asked QEMU to cancel it. Check the VM with \`maqet qmp <vm> query-jobs\`.`,
      { details: { job: id, command, timeoutMs, elapsedMs: clock.now() - started } },
    );
  }
  const job = (await findJob(session, id)) ?? { id, status: "concluded" };
  if (options.keep !== true) await dismissQmpJob(session, id);
  if (job.error !== undefined) {
    throw new MaqetError("SNAPSHOT_FAILED", `QEMU's ${command} job failed: ${job.error}.`, {
      details: { job: id, command, qemuError: job.error },
    });
  }
  report(100);
  return job;
}

/**
 * Dismisses a concluded job (best effort: a job already gone is fine).
 *
 * @example
 * ```ts
 * await dismissQmpJob(session, "maqet-snapshot-save-1a2b3c4d");
 * ```
 */
export async function dismissQmpJob(session: QmpSession, id: string): Promise<void> {
  await session.execute("job-dismiss", { id }).catch(() => undefined);
}

/**
 * QEMU's jobs (`query-jobs`).
 *
 * @example
 * ```ts
 * (await queryQmpJobs(session)).filter((j) => j.id.startsWith("maqet-"));
 * ```
 */
export function queryQmpJobs(session: QmpSession): Promise<QmpJobInfo[]> {
  return session.execute<QmpJobInfo[]>("query-jobs");
}

async function findJob(session: QmpSession, id: string): Promise<QmpJobInfo | undefined> {
  const jobs = await session.execute<QmpJobInfo[]>("query-jobs");
  return jobs.find((j) => j.id === id);
}
