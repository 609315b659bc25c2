/**
 * {@link ProcessControl} on Linux: QEMU is spawned with execa, detached into its own session so it
 * outlives the orchestrator (crash-only), and recognised later through `/proc` alone — a zombie
 * is dead, and a live pid counts as the VM only when its command line carries the VM's marker.
 */
import { once } from "node:events";
import { constants, readdirSync, readFileSync } from "node:fs";
import { chmod, lstat, mkdir, open, readdir, readFile, unlink } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import { type Options as ExecaOptions, execa } from "execa";
import type { Clock, LaunchedProcess, LaunchSpec, ProcessControl, ProcessState } from "../actors/ports.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import { errnoOf } from "./errno.ts";
import { procStatState, zombieExit } from "./process-alive.ts";
import { systemClock } from "./system-clock.ts";
import { waitUntilGone } from "./wait-gone.ts";

export interface ProcessControlOptions {
  /** Directory holding one runtime directory per VM (see `defaultRuntimeRoot`). */
  runtimeRoot: string;
  /** Time source for `waitGone` (default: the system clock). */
  clock?: Clock;
  /** How often `waitGone` probes at most (default 20 ms, after 1, 2, 4 … ms; a detached QEMU is reaped by PID 1 within ~2 s). */
  pollIntervalMs?: number;
  /**
   * Throws when no QEMU may start now (a cluster host whose lease ran out): called in the same
   * tick as the spawn, and once more after it (then the new process is killed), so a process
   * frozen across its lease's end never leaves a QEMU it started afterwards.
   */
  beforeSpawn?: () => void;
}

/** One path component; no leading `-` or `.`, so no `..`, no option look-alike, no hidden dir. */
const VM_DIR_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

function assertPid(pid: number): void {
  // pid 0 and negative pids address process groups in kill(2); never let one through.
  if (!Number.isSafeInteger(pid) || pid <= 1) {
    throw new MaqetError("INVALID_ARGUMENT", `Invalid pid: ${pid}. Expected an integer greater than 1.`, {
      details: { pid },
    });
  }
}

/**
 * Reads the last `bytes` of a log file (for a "QEMU exited at once" error message), starting at a
 * line boundary when it had to cut. Undefined when the file is absent or unreadable: this feeds an
 * error message and must never replace the error it explains.
 *
 * @example
 * ```ts
 * const tail = await readLogTail("/run/user/1000/maqet/web/qemu.log", 2048);
 * throw new MaqetError("START_FAILED", `QEMU exited during start-up: ${tail ?? "(no output)"}`);
 * ```
 */
export async function readLogTail(logFile: string, bytes = 2048): Promise<string | undefined> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(logFile, "r");
    const { size } = await handle.stat();
    const start = Math.max(0, size - Math.max(0, bytes));
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    let text = buffer.toString("utf8");
    const newline = text.indexOf("\n");
    if (start > 0 && newline !== -1 && newline < text.length - 1) text = text.slice(newline + 1);
    return text.trim();
  } catch {
    return undefined;
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Starts the line that separates one run's QEMU output from the previous one's in the log. */
export const LOG_RUN_HEADER = "-- maqet: starting QEMU at ";

/**
 * Only the output of the latest run: what follows the last run header in a log tail.
 *
 * @example
 * ```ts
 * lastRunOutput(await readLogTail(log, 4096)); // "qemu-system-x86_64: -foo: invalid option"
 * ```
 */
export function lastRunOutput(tail: string | undefined): string | undefined {
  if (tail === undefined) return undefined;
  const at = tail.lastIndexOf(LOG_RUN_HEADER);
  if (at === -1) return tail;
  const lineEnd = tail.indexOf("\n", at);
  return lineEnd === -1 ? "" : tail.slice(lineEnd + 1);
}

/** Opens the log for appending, 0600, refusing a symlink: QEMU writes to this fd for its whole life. */
async function openLog(logFile: string): Promise<Awaited<ReturnType<typeof open>>> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW;
  try {
    const handle = await open(logFile, flags, 0o600);
    const { mode } = await handle.stat();
    if ((mode & 0o777) !== 0o600) await handle.chmod(0o600);
    return handle;
  } catch (e) {
    if (errnoOf(e) === "ELOOP") {
      throw new MaqetError("PATH_REFUSED", `Refusing QEMU log file ${logFile}: it is a symlink. Remove it.`, {
        cause: e,
        details: { path: logFile },
      });
    }
    throw new MaqetError("START_FAILED", `Cannot open QEMU log file ${logFile}: ${(e as Error).message}.`, {
      cause: e,
      details: { path: logFile },
    });
  }
}

function spawnFailure(binary: string, cause: unknown): MaqetError {
  const code = errnoOf(cause);
  const fix =
    code === "ENOENT"
      ? `${binary} does not exist. Install QEMU (Debian: apt-get install qemu-system-x86) or configure the path of qemu-system.`
      : code === "EACCES"
        ? `${binary} is not executable by this user. Check its permissions (chmod +x) and the mount options.`
        : `spawning ${binary} failed: ${cause instanceof Error ? cause.message : String(cause)}.`;
  return new MaqetError("START_FAILED", `Cannot start QEMU (${code ?? "spawn error"}): ${fix}`, {
    cause,
    details: { binary, errno: code },
  });
}

/**
 * Creates `dir` (0700) or accepts it when it is a real directory owned by us; tightens it to 0700
 * explicitly, because `mkdir`'s mode is filtered by the umask and an existing dir keeps its mode.
 */
async function ensurePrivateDir(dir: string, what: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (e) {
    if (errnoOf(e) !== "EEXIST") {
      throw new MaqetError("PROCESS_ERROR", `Cannot create ${what} ${dir}: ${(e as Error).message}.`, {
        cause: e,
        details: { path: dir },
      });
    }
  }
  const st = await lstat(dir);
  const refuse = (why: string, fix: string): MaqetError =>
    new MaqetError("PATH_REFUSED", `Refusing ${what} ${dir}: ${why}. ${fix}`, { details: { path: dir } });
  if (st.isSymbolicLink()) throw refuse("it is a symlink", "Remove it; maqet creates the directory itself.");
  if (!st.isDirectory()) throw refuse("it is not a directory", "Remove it or choose another runtime root.");
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw refuse(
      `it is owned by uid ${st.uid}, not by this user (uid ${uid})`,
      "Someone else may have created it to intercept QMP; remove it or set XDG_RUNTIME_DIR.",
    );
  }
  if ((st.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
}

/**
 * Builds the Linux {@link ProcessControl}.
 *
 * `prepareRuntimeDir(vmId)` is called only before a new start. It removes what a previous run
 * left behind — sockets and `*.pid` files — so a pidfile read after launch can never be stale;
 * other files (logs, which are appended to) stay. If a pidfile names a live process whose command
 * line mentions this runtime directory, it refuses with `PROCESS_ERROR` instead of orphaning a
 * running QEMU.
 *
 * @example
 * ```ts
 * const processes = createProcessControl({ runtimeRoot: defaultRuntimeRoot(process.env) });
 * const dir = await processes.prepareRuntimeDir("web");
 * const qemu = await processes.launch({ binary, args, runtimeDir: dir, logFile: `${dir}/qemu.log` });
 * processes.probe(qemu.pid, `${dir}/qmp.sock`); // "alive"
 * ```
 */
export function createProcessControl(options: ProcessControlOptions): ProcessControl {
  const clock = options.clock ?? systemClock;
  const pollIntervalMs = options.pollIntervalMs ?? 20;
  const runtimeRoot = options.runtimeRoot;
  if (!isAbsolute(runtimeRoot)) {
    throw new MaqetError("INVALID_ARGUMENT", `Runtime root must be an absolute path, got '${runtimeRoot}'.`, {
      details: { runtimeRoot },
    });
  }

  function probe(pid: number, marker: string): ProcessState {
    assertPid(pid);
    if (marker === "") throw new MaqetError("INVALID_ARGUMENT", "probe: an empty marker would match any process.");
    let cmdline: string;
    try {
      const state = procStatState(readFileSync(`/proc/${pid}/stat`, "latin1"));
      // A zombie still answers kill -0 until it is reaped (by PID 1 here, up to ~2 s late).
      if (state === "Z" || state === "X") return "gone";
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch (e) {
      const code = errnoOf(e);
      if (code === "ENOENT" || code === "ESRCH") return "gone";
      if (code === "EACCES" || code === "EPERM") return "foreign";
      throw new MaqetError("PROCESS_ERROR", `Cannot inspect pid ${pid} in /proc: ${(e as Error).message}.`, {
        cause: e,
        details: { pid },
      });
    }
    // Arguments are NUL-separated; an empty cmdline is a kernel thread or a process mid-exit.
    return cmdline.split("\0").some((arg) => arg.includes(marker)) ? "alive" : "foreign";
  }

  function findProcesses(marker: string): number[] {
    if (marker === "")
      throw new MaqetError("INVALID_ARGUMENT", "findProcesses: an empty marker would match every process.");
    const found: number[] = [];
    for (const entry of readdirSync("/proc")) {
      const pid = Number(entry);
      if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
      try {
        if (probe(pid, marker) === "alive") found.push(pid);
      } catch {
        // A process that vanished mid-scan is not a match.
      }
    }
    return found;
  }

  function kill(pid: number, signal: "SIGTERM" | "SIGKILL"): void {
    assertPid(pid);
    try {
      process.kill(pid, signal);
    } catch (e) {
      if (errnoOf(e) === "ESRCH") return;
      throw new MaqetError("PROCESS_ERROR", `Cannot send ${signal} to pid ${pid}: ${(e as Error).message}.`, {
        cause: e,
        details: { pid, signal },
      });
    }
  }

  function waitGone(
    pid: number,
    marker: string,
    timeoutMs: number,
    signal?: AbortSignal,
    exited?: Promise<unknown>,
  ): Promise<boolean> {
    return waitUntilGone(() => probe(pid, marker), { clock, pollIntervalMs, timeoutMs, signal, exited });
  }

  async function launch(spec: LaunchSpec, signal?: AbortSignal): Promise<LaunchedProcess> {
    signal?.throwIfAborted();
    if (!isAbsolute(spec.binary)) {
      throw new MaqetError("INVALID_ARGUMENT", `QEMU binary must be an absolute path, got '${spec.binary}'.`, {
        details: { binary: spec.binary },
      });
    }
    const log = await openLog(spec.logFile);
    // The log is kept across runs; a header marks where this run's output starts.
    await log.write(`${LOG_RUN_HEADER}${new Date().toISOString()} ${spec.binary}\n`);
    // execa's types list only fds 3-9; any open fd is handed to spawn() unchanged at runtime.
    const logFd = log.fd as NonNullable<ExecaOptions["stdout"]>;
    try {
      options.beforeSpawn?.();
      const child = execa(spec.binary, spec.args, {
        detached: true, // setsid(): own session and process group, untouched by our terminal's signals
        cleanup: false, // crash-only: our exit must never take QEMU down
        reject: false,
        buffer: false,
        stdin: "ignore",
        // QEMU writes straight into the file: nothing depends on us staying alive to drain a pipe.
        stdout: logFd,
        stderr: logFd,
      });
      // Node's own exit event, not execa's result: that comes after its error handling for a
      // killed child (a failed exit), which `stop --force` would wait on.
      const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.once("exit", (code, signal) => resolve({ code, signal })),
      );
      // `spawn` fires once the exec succeeded; a failed exec resolves the execa promise instead.
      const outcome = await Promise.race([
        once(child, "spawn").then(
          () => ({ spawned: true as const }),
          (error: unknown) => ({ spawned: false as const, error }),
        ),
        child.then((r) => ({ spawned: false as const, error: r.cause ?? r })),
      ]);
      if (!outcome.spawned || child.pid === undefined)
        throw spawnFailure(spec.binary, outcome.spawned ? undefined : outcome.error);
      child.unref();
      if (signal?.aborted) {
        // The caller gave up while we spawned: do not leave it a QEMU it does not know about.
        kill(child.pid, "SIGKILL");
        throw signal.reason;
      }
      try {
        options.beforeSpawn?.();
      } catch (error) {
        kill(child.pid, "SIGKILL");
        throw error;
      }
      return { pid: child.pid, exit };
    } finally {
      await log.close();
    }
  }

  function runtimeDirOf(vmId: string): string {
    return join(runtimeRoot, vmId);
  }

  async function prepareRuntimeDir(vmId: string): Promise<string> {
    if (!VM_DIR_PATTERN.test(vmId) || vmId.includes("..")) {
      throw new MaqetError(
        "INVALID_ARGUMENT",
        `Invalid VM id for a runtime directory: '${vmId}'. Use letters, digits, '_', '.', '-' (no leading '-' or '.', no '..', at most 128).`,
        { details: { vmId } },
      );
    }
    await mkdir(dirname(runtimeRoot), { recursive: true, mode: 0o700 });
    await ensurePrivateDir(runtimeRoot, "maqet runtime root");
    const dir = join(runtimeRoot, vmId);
    await ensurePrivateDir(dir, `runtime directory of VM '${vmId}'`);
    await removeStaleFiles(dir);
    return dir;
  }

  async function removeStaleFiles(dir: string): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true });
    const stale = entries.filter((e) => e.isSocket() || (e.isFile() && e.name.endsWith(".pid")));
    for (const entry of stale) {
      if (!entry.name.endsWith(".pid")) continue;
      const pid = await readPidFile(join(dir, entry.name));
      if (pid !== undefined && pid > 1 && probe(pid, `${dir}/`) === "alive") {
        throw new MaqetError(
          "PROCESS_ERROR",
          `Runtime directory ${dir} is still in use by QEMU pid ${pid}. Stop that VM (or kill ${pid}) first.`,
          { details: { path: dir, pid } },
        );
      }
    }
    for (const entry of stale) {
      await unlink(join(dir, entry.name)).catch((e: unknown) => {
        if (errnoOf(e) !== "ENOENT") throw e;
      });
    }
  }

  async function readPidFile(path: string): Promise<number | undefined> {
    try {
      const text = (await readFile(path, "utf8")).trim();
      // QEMU writes "<pid>\n"; an empty file means it has created but not yet written it.
      return /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : undefined;
    } catch {
      return undefined;
    }
  }

  async function secureSocket(path: string): Promise<void> {
    let st: Awaited<ReturnType<typeof lstat>>;
    try {
      st = await lstat(path);
    } catch (e) {
      throw new MaqetError(
        "PROCESS_ERROR",
        `Cannot secure socket ${path} (it should be QEMU's, mode 0600): ${(e as Error).message}.`,
        {
          cause: e,
          details: { path },
        },
      );
    }
    // chmod follows symlinks: only ever touch the socket QEMU created.
    if (!st.isSocket()) {
      throw new MaqetError("PATH_REFUSED", `Refusing to chmod ${path}: it is not a unix socket.`, {
        details: { path },
      });
    }
    await chmod(path, 0o600);
  }

  return {
    launch,
    probe,
    kill,
    zombieExit: (pid) => {
      assertPid(pid);
      return zombieExit(pid);
    },
    waitGone,
    prepareRuntimeDir,
    runtimeDirOf,
    findProcesses,
    readPidFile,
    secureSocket,
    // Error messages quote this run's QEMU output only, never an earlier run's.
    readLogTail: async (logFile, bytes) => lastRunOutput(await readLogTail(logFile, bytes)),
  };
}
