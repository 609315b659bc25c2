/**
 * `stop --force` when the store cannot be reached: the VM is found from its runtime directory
 * alone (`<runtime root>/<vm id>/qemu.pid`), its identity checked as every stop checks it — the
 * process's /proc cmdline must carry the VM's id (`-uuid <vm id>`) and its name
 * (`-name guest=<name>`) — and it is killed (SIGKILL) and waited for. What happened is returned
 * for the caller to spool (fact-spool.ts) until the store is back.
 *
 * @example
 * ```ts
 * const killed = await forceStopWithoutStore("web", { runtimeRoot });
 * // { vmId: "0b5c…", name: "web", pid: 41873 }
 * ```
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { MaqetError } from "../errors/maqet-error.ts";
import { createProcessControl } from "./process-control.ts";

export interface OfflineStop {
  vmId: string;
  name: string;
  pid: number;
}

/** How long QEMU gets to vanish after SIGKILL (as the escalation's last step). */
const SIGKILL_WAIT_MS = 5000;

/**
 * Finds the running QEMU of VM `nameOrId` under `runtimeRoot` and kills it; undefined when no
 * running QEMU of that VM is found there.
 */
export async function forceStopWithoutStore(
  nameOrId: string,
  options: { runtimeRoot: string },
): Promise<OfflineStop | undefined> {
  const processes = createProcessControl({ runtimeRoot: options.runtimeRoot });
  let entries: string[];
  try {
    entries = await readdir(options.runtimeRoot);
  } catch {
    return undefined;
  }
  for (const vmId of entries) {
    const pid = await processes.readPidFile(join(options.runtimeRoot, vmId, "qemu.pid"));
    if (pid === undefined || pid <= 1 || processes.probe(pid, vmId) !== "alive") continue;
    const args = await cmdline(pid);
    const name = nameOf(args);
    if (name === undefined || args[args.indexOf("-uuid") + 1] !== vmId) continue;
    if (name !== nameOrId && vmId !== nameOrId) continue;
    processes.kill(pid, "SIGKILL");
    if (!(await processes.waitGone(pid, vmId, SIGKILL_WAIT_MS))) {
      throw new MaqetError(
        "STOP_FAILED",
        `VM '${name}' (pid ${pid}) survived SIGKILL. Check the process with \`ps -o stat,cmd -p ${pid}\`.`,
        { details: { pid } },
      );
    }
    return { vmId, name, pid };
  }
  return undefined;
}

async function cmdline(pid: number): Promise<string[]> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
  } catch {
    return [];
  }
}

/** The VM name in `-name guest=<name>` (QEMU's `,,` escape undone), as qemu-argv.ts writes it. */
function nameOf(args: string[]): string | undefined {
  const value = args[args.indexOf("-name") + 1];
  if (args.indexOf("-name") < 0 || value === undefined || !value.startsWith("guest=")) return undefined;
  const rest = value.slice("guest=".length);
  // Up to the first single comma (a further option), with ",," meaning one comma.
  const match = /^((?:[^,]|,,)*)/.exec(rest);
  return match![1]!.replaceAll(",,", ",");
}
