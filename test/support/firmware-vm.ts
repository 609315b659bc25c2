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
import type { VmConfigInput } from "../../src/mod.ts";

/** The VM as YAML: name, binary, accel, memory (default 64M), then `extra` (whole YAML lines). */
export function firmwareVmYaml(name: string, extra = "", options: { memory?: string } = {}): string {
  return `name: ${name}\nbinary: qemu-system-x86_64\naccel: tcg\nmemory: ${options.memory ?? "64M"}\n${extra}`;
}

/** The VM as a config object for `maqet.add`; `extra` adds or overrides keys. */
export function firmwareVm(name: string, extra: Partial<VmConfigInput> = {}): VmConfigInput {
  return { name, binary: "qemu-system-x86_64", accel: "tcg", memory: "64M", ...extra };
}
