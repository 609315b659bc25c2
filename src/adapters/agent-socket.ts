/**
 * Where the agent listens, made safe: the socket's directory is created 0700 (0710 and given to
 * the group with `--group`), refused when it is a symlink or another user's; one agent per socket
 * and per data directory, by lock files (`<socket>.lock`, `<data-dir>/agent.lock`, taken with
 * O_EXCL, a dead holder's taken over by the data-dir lock's protocol): a second agent exits 1
 * naming the first's pid. A socket file left by a dead agent is removed only while holding the
 * lock, and only when nothing answers on it. The socket is 0600 (0660 for the group).
 *
 * @example
 * ```ts
 * const place = await claimAgentSocket({ socket: "/run/user/1000/maqet/agent.sock", dataDir });
 * server.listen(place.socket, () => place.secure());
 * ```
 */
import { readFileSync } from "node:fs";
import { chmod, chown, lstat, mkdir, unlink } from "node:fs/promises";
import { connect } from "node:net";
import { dirname } from "node:path";
import { isMaqetError, MaqetError } from "../errors/maqet-error.ts";
import { acquireDataDirLock, type DataDirLock } from "./data-dir-lock.ts";

export interface AgentPlace {
  readonly socket: string;
  /** Sets the socket's mode (and group) once it is bound. */
  secure(): Promise<void>;
  /** Removes the socket and releases the locks. */
  release(): Promise<void>;
}

export interface ClaimOptions {
  socket: string;
  /** The embedded store's data directory (absent with a server: many agents may share one). */
  dataDir?: string;
  group?: string;
}

export async function claimAgentSocket(options: ClaimOptions): Promise<AgentPlace> {
  const gid = options.group === undefined ? undefined : groupId(options.group);
  const dir = dirname(options.socket);
  await privateDir(dir, gid);
  const locks: DataDirLock[] = [];
  const releaseLocks = async () => {
    for (const lock of locks.reverse()) await lock.release();
  };
  try {
    locks.push(await lockOrRefuse(options.socket, `socket ${options.socket}`));
    if (options.dataDir !== undefined) {
      await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
      locks.push(await lockOrRefuse(`${options.dataDir}/agent`, `data directory ${options.dataDir}`));
    }
    await removeStaleSocket(options.socket);
  } catch (error) {
    await releaseLocks();
    throw error;
  }
  return {
    socket: options.socket,
    secure: async () => {
      if (gid !== undefined) await chown(options.socket, -1, gid);
      await chmod(options.socket, gid === undefined ? 0o600 : 0o660);
    },
    release: async () => {
      await unlink(options.socket).catch(() => undefined);
      await releaseLocks();
    },
  };
}

async function privateDir(dir: string, gid: number | undefined): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const stat = await lstat(dir);
  if (!stat.isDirectory()) {
    throw new MaqetError(
      "PATH_REFUSED",
      `The agent's socket directory ${dir} is not a directory (a symlink?); refusing it.`,
    );
  }
  if (process.getuid && stat.uid !== process.getuid()) {
    throw new MaqetError(
      "PATH_REFUSED",
      `The agent's socket directory ${dir} belongs to uid ${stat.uid}, not to this user; refusing it.`,
    );
  }
  if (gid !== undefined) await chown(dir, -1, gid);
  await chmod(dir, gid === undefined ? 0o700 : 0o710);
}

async function lockOrRefuse(path: string, what: string): Promise<DataDirLock> {
  try {
    return await acquireDataDirLock(path, { waitMs: 0 });
  } catch (error) {
    if (!isMaqetError(error, "STORE_LOCKED")) throw error;
    const pid = error.details.holderPid;
    throw new MaqetError(
      "AGENT_RUNNING",
      `Another maqet agent (pid ${pid ?? "unknown"}) already serves the ${what}. Use it (the CLI finds it by itself), stop it (kill ${pid ?? "<pid>"}), or give this one another --socket / --data-dir.`,
      { cause: error, details: { pid, lock: `${path}.lock` } },
    );
  }
}

/** Removes a socket file nobody answers on (we hold the lock, so its agent is gone). */
async function removeStaleSocket(socket: string): Promise<void> {
  const stat = await lstat(socket).catch(() => undefined);
  if (stat === undefined) return;
  if (!stat.isSocket()) {
    throw new MaqetError(
      "PATH_REFUSED",
      `${socket} exists and is not a socket; refusing to replace it. Remove it or choose another --socket.`,
    );
  }
  if (await answers(socket)) {
    throw new MaqetError(
      "AGENT_RUNNING",
      `Something already answers on ${socket} (an agent that took no lock?). Stop it, or choose another --socket.`,
    );
  }
  await unlink(socket);
}

function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = connect(socket);
    conn.once("connect", () => {
      conn.destroy();
      resolve(true);
    });
    conn.once("error", () => resolve(false));
  });
}

/** A group's id from /etc/group (or a number as is). */
function groupId(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  try {
    for (const line of readFileSync("/etc/group", "utf8").split("\n")) {
      const [group, , gid] = line.split(":");
      if (group === name && gid !== undefined) return Number(gid);
    }
  } catch {}
  throw new MaqetError(
    "INVALID_ARGUMENT",
    `Unknown group '${name}' for --group (not in /etc/group). Create it (groupadd ${name}) or give its number.`,
  );
}
