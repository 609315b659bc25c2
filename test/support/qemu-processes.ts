/**
 * Live QEMU processes as /proc shows them, found by a text on their command line (a VM's id, or a
 * simulated host's runtime directory): one pass over /proc for any number of texts.
 *
 * @example
 * ```ts
 * qemuProcesses([vmId]).get(vmId); // [{ pid: 4242, ppid: 4100, state: "S", runtime: "/tmp/…/run-a" }]
 * ```
 */
import { readdirSync, readFileSync } from "node:fs";

/** One live QEMU process of a VM, as /proc shows it. */
export interface QemuSeen {
  pid: number;
  ppid: number;
  state: string;
  /** The runtime directory on its command line (a simulated host's: `.../run-<host>`). */
  runtime: string;
}

/**
 * The live QEMU processes that name each text on their command line, from ONE pass over /proc
 * (a VM's id is on its QEMU's command line): one instant, for every VM at once. Synchronous
 * reads: a pass over a few hundred processes takes a few milliseconds this way, where as many
 * awaited reads took 100-200 ms at load, and the watch would look that much less often.
 */
export function qemuProcesses(texts: readonly string[]): Map<string, QemuSeen[]> {
  const found = new Map<string, QemuSeen[]>(texts.map((t) => [t, []]));
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (!cmdline[0]?.includes("qemu-system")) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (state === "Z" || state === "X") continue;
      const runtime = /[^ ,=]*\/run-[^/ ,]+/.exec(cmdline.join(" "))?.[0] ?? "?";
      for (const text of texts) {
        if (cmdline.some((a) => a.includes(text))) {
          found.get(text)!.push({ pid: Number(entry), ppid: Number(ppid), state: state!, runtime });
        }
      }
    } catch {
      // gone between readdir and read
    }
  }
  return found;
}
