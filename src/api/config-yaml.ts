/**
 * A stored VM config written back as the YAML a user would write (`maqet edit`, `maqet info
 * --format yaml`): the inverse of the config validator, so that validating the text gives the
 * same config again (tested for every form in docs/config.md). Paths are absolute, as stored.
 *
 * @example
 * ```ts
 * const text = vmConfigToYaml(view.config); // "name: web\nmemory: 1G\n..."
 * ```
 */
import { stringify } from "yaml";
import type { VmConfig } from "../config/vm-config.ts";

/** Keys written in this order (others, from newer versions, follow as they are). */
const ORDER = [
  "name",
  "binary",
  "memory",
  "cpu",
  "accel",
  "machine",
  "display",
  "vga",
  "kernel",
  "initrd",
  "append",
  "arguments",
  "args",
  "storage",
  "ports",
  "cloud-init",
  "qmp",
];

/**
 * The config as a plain YAML-shaped mapping (snake_case storage keys, shares back in `storage`,
 * defaults left out).
 *
 * @example
 * ```ts
 * vmConfigToRaw({ accel: "auto", args: [], arguments: [], storage: [], memory: "1G" }); // { memory: "1G" }
 * ```
 */
export function vmConfigToRaw(config: VmConfig): Record<string, unknown> {
  const source = config as unknown as Record<string, unknown>;
  const raw: Record<string, unknown> = {};
  const keys = [...ORDER, ...Object.keys(source).filter((k) => !ORDER.includes(k) && k !== "shares")];
  for (const key of keys) {
    const value = source[key];
    if (value === undefined) continue;
    if (key === "accel" && value === "auto") continue;
    if ((key === "args" || key === "arguments") && Array.isArray(value) && value.length === 0) continue;
    if (key === "ports") {
      raw.ports = config.ports?.map((f) => `${f.hostIp}:${f.hostPort}:${f.guestPort}/${f.protocol}`);
      continue;
    }
    if (key === "cloud-init" || key === "cloudInit") {
      if (config.cloudInit !== undefined) raw["cloud-init"] = structuredClone(config.cloudInit.userData);
      continue;
    }
    if (key === "storage") {
      const entries = [...config.storage.map(diskToRaw), ...(config.shares ?? []).map(shareToRaw)];
      if (entries.length > 0) raw.storage = entries;
      continue;
    }
    raw[key] = structuredClone(value);
  }
  return raw;
}

function diskToRaw(disk: VmConfig["storage"][number]): Record<string, unknown> {
  const source = disk as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = { name: disk.name, type: disk.type, file: disk.file };
  if (disk.size !== undefined) out.size = disk.size;
  out.interface = disk.interface;
  if (disk.backingFile !== undefined) out.backing_file = disk.backingFile;
  if (disk.backingFormat !== undefined) out.backing_format = disk.backingFormat;
  if (disk.options !== undefined) out.options = { ...disk.options };
  // Keys added by newer versions (e.g. media) are written under their own name.
  for (const [key, value] of Object.entries(source)) {
    if (!(key in out) && !["backingFile", "backingFormat"].includes(key) && value !== undefined) out[key] = value;
  }
  return out;
}

function shareToRaw(share: NonNullable<VmConfig["shares"]>[number]): Record<string, unknown> {
  const options: Record<string, unknown> = { ...(share.extra ?? {}) };
  if (share.id !== share.name) options.id = share.id;
  return {
    name: share.name,
    type: "virtfs",
    path: share.path,
    mount_tag: share.mountTag,
    security_model: share.securityModel,
    readonly: share.readonly,
    ...(Object.keys(options).length > 0 ? { options } : {}),
  };
}

/**
 * The config as YAML text, with a header comment.
 *
 * @example
 * ```ts
 * await writeFile("web.yaml", vmConfigToYaml(view.config, "# VM web\n"));
 * ```
 */
export function vmConfigToYaml(config: VmConfig, header = ""): string {
  // `null` stays `null` (a flag such as `- enable-kvm: null`); strings like "on" stay quoted.
  return header + stringify(vmConfigToRaw(config), { lineWidth: 0, nullStr: "null" });
}
