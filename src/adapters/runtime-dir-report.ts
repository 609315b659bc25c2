/**
 * What `maqet doctor` checks in the runtime directory: the root (a real directory, owned by this
 * user, closed to others), each VM's directory (0700), and each QMP socket (does something still
 * answer on it?). Reports only; it changes nothing.
 *
 * @example
 * ```ts
 * const report = await inspectRuntimeRoot("/run/user/1000/maqet");
 * report.vms.filter((v) => v.socket && !v.socket.answers);
 * ```
 */
import { lstat, readdir } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";

export interface RuntimeDirEntry {
  /** The directory name: the VM id. */
  vmId: string;
  path: string;
  mode: number;
  problems: string[];
  socket?: { path: string; answers: boolean };
}

export interface RuntimeRootReport {
  path: string;
  exists: boolean;
  mode?: number;
  /** What is wrong with the root itself (empty when fine). */
  problems: string[];
  vms: RuntimeDirEntry[];
}

export async function inspectRuntimeRoot(root: string, options: { uid?: number } = {}): Promise<RuntimeRootReport> {
  const uid = options.uid ?? (typeof process.getuid === "function" ? process.getuid() : -1);
  const report: RuntimeRootReport = { path: root, exists: false, problems: [], vms: [] };
  let stat: Awaited<ReturnType<typeof lstat>>;
  try {
    stat = await lstat(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return report; // created on the first start
    report.problems.push(`cannot be read: ${(error as Error).message}`);
    return report;
  }
  report.exists = true;
  report.mode = Number(stat.mode) & 0o7777;
  report.problems.push(...problemsOf(stat, uid, "directory"));
  if (!stat.isDirectory()) return report;
  for (const name of (await readdir(root).catch(() => [])).sort()) {
    const path = join(root, name);
    const entry = await lstat(path).catch(() => undefined);
    if (entry === undefined || !entry.isDirectory()) continue;
    const vm: RuntimeDirEntry = {
      vmId: name,
      path,
      mode: Number(entry.mode) & 0o7777,
      problems: problemsOf(entry, uid, "directory"),
    };
    const socketPath = join(path, "qmp.sock");
    const socket = await lstat(socketPath).catch(() => undefined);
    if (socket !== undefined) {
      if (!socket.isSocket()) vm.problems.push("qmp.sock is not a socket");
      else {
        if ((Number(socket.mode) & 0o077) !== 0)
          vm.problems.push(`qmp.sock is mode ${octal(socket.mode)}, expected 0600`);
        vm.socket = { path: socketPath, answers: await answers(socketPath) };
      }
    }
    report.vms.push(vm);
  }
  return report;
}

function problemsOf(stat: Awaited<ReturnType<typeof lstat>>, uid: number, what: string): string[] {
  const problems: string[] = [];
  if (stat.isSymbolicLink()) return [`is a symlink, not a ${what}`];
  if (!stat.isDirectory()) return [`is not a ${what}`];
  if (uid >= 0 && Number(stat.uid) !== uid) problems.push(`is owned by uid ${stat.uid}, not by you (uid ${uid})`);
  if ((Number(stat.mode) & 0o077) !== 0)
    problems.push(`is mode ${octal(stat.mode)}: others can enter it (expected 0700)`);
  return problems;
}

function octal(mode: number | bigint): string {
  return `0${(Number(mode) & 0o777).toString(8)}`;
}

/** True when something accepts a connection on the socket within a moment. */
function answers(path: string, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.once("connect", () => finish(true));
    socket.once("error", () => finish(false));
  });
}
