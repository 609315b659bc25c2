/**
 * The agent's side of the fence guard (src/adapters/fence-guard.ts): starts it detached, moves
 * its deadline after every lease renewal, stands it down at a clean stop.
 *
 * @example
 * ```ts
 * const guard = await startFenceGuard({ runtimeRoot });
 * guard.arm(process.hrtime.bigint() + 15_000_000_000n);
 * await guard.standDown();
 * ```
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { GuardState } from "./fence-guard.ts";

export interface FenceGuard {
  /** Fire at this monotonic time (`process.hrtime.bigint()` scale) unless moved again. */
  arm(deadlineNs: bigint): Promise<void>;
  /** A clean stop: the guard exits without firing. */
  standDown(): Promise<void>;
  /** The guard's process id (undefined when it could not be started). */
  readonly pid: number | undefined;
}

/**
 * Starts the guard for the QEMU processes under `runtimeRoot`. Without a built guard script
 * (running from the TypeScript sources), returns a guard that only writes its file, and says so.
 */
export async function startFenceGuard(options: {
  runtimeRoot: string;
  onWarning?: (message: string) => void;
}): Promise<FenceGuard> {
  await mkdir(options.runtimeRoot, { recursive: true, mode: 0o700 });
  const file = join(options.runtimeRoot, "fence-guard.json");
  const token = crypto.randomUUID();
  const write = async (state: GuardState) => {
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(state), { mode: 0o600 });
    await rename(tmp, file);
  };
  // Armed far ahead until the first renewal moves it: a guard never fires before it is told when.
  await write({
    token,
    deadlineNs: String(process.hrtime.bigint() + 3_600_000_000_000n),
    root: options.runtimeRoot,
    state: "armed",
  });
  // From dist/src/adapters/ (the library) and from dist/src/bin/ (the bundled executable, whose
  // chunks sit at the same depth) alike: "./fence-guard.js" from a bundle chunk named a file that
  // is never there, and every agent ran without a guard.
  const script = fileURLToPath(new URL("../adapters/fence-guard.js", import.meta.url));
  let pid: number | undefined;
  if (existsSync(script)) {
    const child = spawn(process.execPath, [script, file, token], { detached: true, stdio: "ignore" });
    child.unref();
    pid = child.pid;
  } else {
    options.onWarning?.(`no fence guard (${script} is not built): a frozen agent will not stop its VMs' QEMU`);
  }
  return {
    pid,
    arm: (deadlineNs) => write({ token, deadlineNs: String(deadlineNs), root: options.runtimeRoot, state: "armed" }),
    standDown: () => write({ token, deadlineNs: "0", root: options.runtimeRoot, state: "down" }),
  };
}
