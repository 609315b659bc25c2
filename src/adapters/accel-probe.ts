/**
 * Is KVM really usable, not just present? Starts a firmware-only QEMU with `-accel kvm` (no disk,
 * no display, QMP on stdio), asks `query-kvm`, lets the firmware run for a moment and reads
 * `query-status`: `running` means a vCPU really executes under KVM; QEMU refusing the
 * accelerator, or stopping with `internal-error`, means it does not. Also reads the CPU flags:
 * a KVM without `vmx`/`svm` is a nested or paravirtual one (e.g. PVM), which runs firmware but
 * may hang real kernels.
 *
 * @example
 * ```ts
 * const kvm = await probeKvm("/usr/bin/qemu-system-x86_64");
 * kvm.works; // true when a vCPU ran under KVM
 * ```
 */
import { constants } from "node:fs";
import { access, readFile } from "node:fs/promises";
import { execa } from "execa";

export interface KvmProbe {
  /** /dev/kvm exists. */
  device: boolean;
  /** /dev/kvm can be opened read-write by this user. */
  accessible: boolean;
  /** QEMU's `query-kvm` answer under `-accel kvm`. */
  enabled?: boolean;
  /** The firmware ran under KVM (`query-status` said running after `cont`). */
  works: boolean;
  /** QEMU's run state after the firmware ran (`running`, `internal-error`...). */
  status?: string;
  /** `vmx` (Intel) or `svm` (AMD) in /proc/cpuinfo; false hints at nested/paravirtual KVM. */
  hardwareVirtualization?: boolean;
  /** What went wrong, in QEMU's words when it said something. */
  error?: string;
  durationMs: number;
}

export async function probeKvm(
  binary: string,
  options: { device?: string; timeoutMs?: number; runMs?: number } = {},
): Promise<KvmProbe> {
  const device = options.device ?? "/dev/kvm";
  const t0 = performance.now();
  const done = (probe: Omit<KvmProbe, "durationMs">): KvmProbe => ({
    ...probe,
    durationMs: Math.round(performance.now() - t0),
  });
  const present = await access(device, constants.F_OK).then(
    () => true,
    () => false,
  );
  const accessible =
    present &&
    (await access(device, constants.R_OK | constants.W_OK).then(
      () => true,
      () => false,
    ));
  const hardwareVirtualization = await readFile("/proc/cpuinfo", "utf8").then(
    (text) => /^flags\s*:.*\b(vmx|svm)\b/m.test(text),
    () => undefined,
  );
  const base = {
    device: present,
    accessible,
    ...(hardwareVirtualization === undefined ? {} : { hardwareVirtualization }),
  };
  if (!accessible) {
    return done({
      ...base,
      works: false,
      error: present ? `${device} is not readable and writable by this user` : `${device} does not exist`,
    });
  }
  const child = execa(binary, ["-accel", "kvm", "-nodefaults", "-display", "none", "-S", "-m", "16", "-qmp", "stdio"], {
    reject: false,
    stdin: "pipe",
    cwd: "/",
    timeout: options.timeoutMs ?? 10_000,
    forceKillAfterDelay: 1000,
  });
  const lines: Record<string, unknown>[] = [];
  let waiting: (() => void) | undefined;
  let buffer = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    buffer += chunk;
    for (let cut = buffer.indexOf("\n"); cut >= 0; cut = buffer.indexOf("\n")) {
      const line = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 1);
      if (!line) continue;
      try {
        const message = JSON.parse(line) as Record<string, unknown>;
        if (!("event" in message)) {
          lines.push(message);
          waiting?.();
        }
      } catch {
        // not QMP: ignore
      }
    }
  });
  const ended = child.then(() => undefined);
  const reply = async (): Promise<Record<string, unknown> | undefined> => {
    while (lines.length === 0) {
      const next = new Promise<void>((resolve) => {
        waiting = resolve;
      });
      if (
        (await Promise.race([next.then(() => "line"), ended.then(() => "ended")])) === "ended" &&
        lines.length === 0
      ) {
        return undefined;
      }
    }
    return lines.shift();
  };
  const send = async (command: string): Promise<Record<string, unknown> | undefined> => {
    child.stdin?.write(`${JSON.stringify({ execute: command })}\n`);
    return reply();
  };
  try {
    if ((await reply()) === undefined) throw new Error("no QMP greeting");
    await send("qmp_capabilities");
    const kvm = (await send("query-kvm"))?.return as { enabled?: boolean } | undefined;
    await send("cont");
    await new Promise((r) => setTimeout(r, options.runMs ?? 200));
    const status = ((await send("query-status"))?.return as { status?: string } | undefined)?.status;
    child.stdin?.write(`${JSON.stringify({ execute: "quit" })}\n`);
    child.stdin?.end();
    await child;
    return done({
      ...base,
      enabled: kvm?.enabled === true,
      status,
      works: kvm?.enabled === true && status === "running",
    });
  } catch (error) {
    child.kill("SIGKILL");
    const result = await child;
    const said = String(result.stderr ?? "")
      .trim()
      .split("\n")
      .filter((l) => !/warning:/i.test(l))
      .join(" ");
    return done({ ...base, works: false, error: said || (error as Error).message });
  }
}

/**
 * The first line of `<binary> --version`, e.g. `QEMU emulator version 7.2.22 (Debian ...)`.
 *
 * @example
 * ```ts
 * await binaryVersion("/usr/bin/qemu-system-x86_64"); // "7.2.22"
 * ```
 */
export async function binaryVersion(binary: string, timeoutMs = 10_000): Promise<string | undefined> {
  const result = await execa(binary, ["--version"], { reject: false, stdin: "ignore", timeout: timeoutMs, cwd: "/" });
  return /version\s+(\d+\.\d+(?:\.\d+)?)/.exec(String(result.stdout ?? ""))?.[1];
}
