/**
 * The fence guard: a tiny process the cluster agent leaves beside itself (detached, its own
 * session), the software watchdog of docs/cluster.md. The agent writes a deadline (on the
 * system-wide monotonic clock, CLOCK_MONOTONIC, which a stopped or killed agent cannot hold back)
 * after every lease renewal. When the deadline passes (the agent froze, died, or lost the
 * database), the guard SIGKILLs every QEMU whose command line names this host's runtime root,
 * so that by the time other hosts confirm the fencing, nothing of this host's VMs runs.
 * It exits when the agent stands it down (a clean stop), when a newer guard takes over (another
 * token in the file), or after it fired.
 *
 * Run as a script: `node fence-guard.js STATE_FILE TOKEN`.
 *
 * @example
 * ```ts
 * // written by src/adapters/fence-guard-control.ts:
 * // {"token":"…","deadlineNs":"123456789","root":"/run/user/1000/maqet","state":"armed"}
 * ```
 */
import { readdir, readFile, writeFile } from "node:fs/promises";

export interface GuardState {
  token: string;
  /** process.hrtime.bigint() value after which the guard fires (decimal string). */
  deadlineNs: string;
  /** The runtime root: QEMU processes whose command line contains it are this host's. */
  root: string;
  state: "armed" | "down" | "fired";
  /** What the guard did when it fired. */
  killed?: number[];
  firedAt?: string;
}

/** Live qemu-system processes whose command line contains `root`. */
export async function qemuUnder(root: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = (await readFile(`/proc/${entry}/cmdline`, "utf8")).split("\0");
      if (args[0]?.includes("qemu-system") && args.some((a) => a.includes(`${root}/`))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/**
 * SIGKILLs every live QEMU of the host whose runtime root is `root` (the fence: the guard's, and
 * the agent's own self-fence); returns the pids killed. Chosen by command line, never by a pid
 * read from the store: a pid recorded by another host names another machine's process (on one
 * machine, another simulated host's QEMU).
 */
export async function killQemuUnder(root: string): Promise<number[]> {
  const killed: number[] = [];
  for (const pid of await qemuUnder(root)) {
    try {
      process.kill(pid, "SIGKILL");
      killed.push(pid);
    } catch {
      // already gone
    }
  }
  return killed;
}

async function guard(file: string, token: string): Promise<void> {
  for (;;) {
    let state: GuardState;
    try {
      state = JSON.parse(await readFile(file, "utf8")) as GuardState;
    } catch {
      return; // the file is gone: nothing to guard
    }
    if (state.token !== token || state.state !== "armed") return;
    if (process.hrtime.bigint() > BigInt(state.deadlineNs)) {
      const killed = await killQemuUnder(state.root);
      await writeFile(file, JSON.stringify({ ...state, state: "fired", killed, firedAt: new Date().toISOString() }), {
        mode: 0o600,
      }).catch(() => undefined);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

if (process.argv[1]?.endsWith("fence-guard.js") && process.argv.length >= 4) {
  guard(process.argv[2]!, process.argv[3]!).then(
    () => process.exit(0),
    () => process.exit(1),
  );
}
