/**
 * The one firmware-VM config builder: a VM with the real QEMU (found on PATH), TCG and no kernel
 * or disk to boot, so it starts in tens of milliseconds and runs SeaBIOS until stopped; what
 * most qemu and e2e tests drive.
 *
 * @example
 * ```ts
 * await writeFile(join(dir, "web.yaml"), firmwareVmYaml("web", "args: [-nodefaults]\n"));
 * await maqet.add(firmwareVm("db", { memory: "32M" }));
 * ```
 */
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import type { VmConfigInput } from "../../src/mod.ts";

/**
 * The VM as YAML: name, binary (default `qemu-system-x86_64`, found on PATH), accel, memory
 * (default 64M), then `extra` (whole YAML lines).
 */
export function firmwareVmYaml(name: string, extra = "", options: { memory?: string; binary?: string } = {}): string {
  const binary = options.binary ?? "qemu-system-x86_64";
  return `name: ${name}\nbinary: ${binary}\naccel: tcg\nmemory: ${options.memory ?? "64M"}\n${extra}`;
}

/**
 * qemu-system-x86_64's absolute path on this PATH: for a VM that must find its QEMU when maqet
 * runs with another PATH (a test of what else is missing from it).
 */
export function qemuSystemPath(): string {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, "qemu-system-x86_64");
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new Error("qemu-system-x86_64 is not on PATH: install it (apt-get install -y qemu-system-x86)");
}

/** The VM as a config object for `maqet.add`; `extra` adds or overrides keys. */
export function firmwareVm(name: string, extra: Partial<VmConfigInput> = {}): VmConfigInput {
  return { name, binary: "qemu-system-x86_64", accel: "tcg", memory: "64M", ...extra };
}
