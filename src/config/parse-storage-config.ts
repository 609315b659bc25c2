/**
 * The `storage:` list of a VM config: qcow2/raw disks (file, size, interface, backing file,
 * options) and VirtFS shares (MAQET's `options:` form and top-level keys), validated with errors
 * that name the key path (`storage[1].size`). Pure: no file is touched.
 *
 * @example
 * ```ts
 * const { disks, shares } = parseStorage(raw.storage, "/srv/vms", { source: "vm.yaml" });
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";
import { type ConfigContext, configError, expectString, resolvePath, show, suggest } from "./config-errors.ts";
import type { DiskDevice, DiskFormat, DiskInterface, VirtfsSecurityModel, VirtfsShare } from "./vm-config.ts";

const STORAGE_KEYS = [
  "backing_file",
  "backing_format",
  "file",
  "interface",
  "media",
  "name",
  "options",
  "size",
  "type",
] as const;
const VIRTFS_KEYS = ["mount_tag", "name", "options", "path", "readonly", "security_model", "type"] as const;
/** Keys of a VirtFS entry that may sit at the top level (MAQET's docs) or under `options:` (MAQET's code). */
const VIRTFS_OPTION_KEYS = ["mount_tag", "security_model", "readonly", "id"] as const;
const SECURITY_MODELS: readonly VirtfsSecurityModel[] = [
  "passthrough",
  "mapped-xattr",
  "mapped-file",
  "mapped",
  "none",
];
const MOUNT_TAG_PATTERN = /^[A-Za-z0-9_.-]{1,31}$/;
const OPTION_KEY_PATTERN = /^[a-z][a-z0-9_.-]{0,40}$/;
const FORMATS: readonly DiskFormat[] = ["qcow2", "raw"];
const INTERFACES: readonly DiskInterface[] = ["virtio", "sata", "ide", "scsi", "none"];
/** QEMU's id rule (letter first; letters, digits, `-`, `.`, `_`), kept short for node names. */
const STORAGE_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,30}$/;
const SIZE_PATTERN = /^\d+[KMGT]?$/i;
/** MAQET's size for a disk that gives none (and has no backing file). */
export const DEFAULT_DISK_SIZE = "10G";
const CDROM_INTERFACES: readonly DiskInterface[] = ["ide", "sata", "scsi"];
/** One AHCI controller has six ports. */
const MAX_SATA_DISKS = 6;

export function parseStorage(
  value: unknown,
  baseDir: string,
  ctx: ConfigContext,
): { disks: DiskDevice[]; shares: VirtfsShare[] } {
  if (value === undefined || value === null) return { disks: [], shares: [] };
  if (!Array.isArray(value))
    configError(ctx, "storage", "a list of disks such as - {name: hdd, type: qcow2, size: 10G}", value);
  const byName = new Map<string, number>();
  const byFile = new Map<string, number>();
  const byTag = new Map<string, number>();
  const disks: DiskDevice[] = [];
  const indexOf = new Map<DiskDevice, number>();
  const shares: VirtfsShare[] = [];
  value.forEach((entry: unknown, i) => {
    const at = `storage[${i}]`;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      configError(ctx, at, "a mapping with type: and size: (and optionally name:, file:, interface:)", entry);
    }
    const item = entry as Record<string, unknown>;
    const isShare = item.type === "virtfs";
    const allowed: readonly string[] = isShare ? VIRTFS_KEYS : STORAGE_KEYS;
    for (const key of Object.keys(item)) {
      if (!allowed.includes(key)) {
        const hint = suggest(key, allowed);
        throw new MaqetError(
          "CONFIG_INVALID",
          `Invalid config: unknown key '${at}.${key}' in ${ctx.source}.${hint ? ` Did you mean '${hint}'?` : ""} Valid keys for a ${isShare ? "virtfs" : "disk"} storage entry: ${allowed.join(", ")}. Remove or rename it.`,
          { details: { keyPath: `${at}.${key}`, source: ctx.source } },
        );
      }
    }
    let name = isShare ? `share${i}` : `hdd${i}`;
    if (item.name !== undefined && item.name !== null) {
      if (typeof item.name !== "string" || !STORAGE_NAME_PATTERN.test(item.name) || item.name.startsWith("maqet-")) {
        configError(
          ctx,
          `${at}.name`,
          "a letter followed by up to 30 letters, digits, '.', '_' or '-' (not starting with maqet-)",
          item.name,
        );
      }
      name = item.name;
    }
    const previous = byName.get(name);
    if (previous !== undefined) {
      configError(ctx, `${at}.name`, `unique (storage[${previous}] already uses it)`, name, "Rename one of them");
    }
    byName.set(name, i);
    if (isShare) {
      const share = parseShare(item, name, at, baseDir, ctx);
      const sameTag = byTag.get(share.mountTag);
      if (sameTag !== undefined) {
        configError(ctx, `${at}.mount_tag`, `unique (storage[${sameTag}] already uses it)`, share.mountTag);
      }
      byTag.set(share.mountTag, i);
      shares.push(share);
      return;
    }
    const cdrom = item.media !== undefined && item.media !== null;
    if (cdrom && item.media !== "cdrom") configError(ctx, `${at}.media`, "cdrom (or left out for a disk)", item.media);
    if (cdrom && item.type !== undefined && item.type !== null && item.type !== "raw") {
      configError(ctx, `${at}.type`, "raw (or left out) for a CD-ROM image", item.type);
    }
    if (cdrom) item.type ??= "raw";
    if (!FORMATS.includes(item.type as DiskFormat)) configError(ctx, `${at}.type`, "qcow2, raw or virtfs", item.type);
    const type = item.type as DiskFormat;
    const fileValue =
      item.file === undefined || item.file === null ? `${name}.${type}` : expectString(item.file, `${at}.file`, ctx);
    const file = resolvePath(baseDir, fileValue, `${at}.file`, ctx);
    const sameFile = byFile.get(file);
    if (sameFile !== undefined) configError(ctx, `${at}.file`, `a different file from storage[${sameFile}]`, file);
    byFile.set(file, i);
    const disk: DiskDevice = { name, type, file, interface: cdrom ? "ide" : "virtio" };
    if (cdrom) {
      if (item.file === undefined || item.file === null) {
        configError(
          ctx,
          `${at}.file`,
          "the ISO image of the CD-ROM (e.g. file: ./install.iso)",
          item.file,
          "Add file:",
        );
      }
      for (const key of ["size", "backing_file", "backing_format", "options"]) {
        if (item[key] !== undefined && item[key] !== null) {
          configError(
            ctx,
            `${at}.${key}`,
            "left out for a CD-ROM (media: cdrom): its image is never created",
            item[key],
          );
        }
      }
      disk.media = "cdrom";
    }
    if (item.size !== undefined && item.size !== null) {
      const size = typeof item.size === "number" && Number.isSafeInteger(item.size) ? String(item.size) : item.size;
      if (typeof size !== "string" || !SIZE_PATTERN.test(size))
        configError(ctx, `${at}.size`, "a size like 10G or 512M", item.size);
      disk.size = size.toUpperCase();
    }
    if (item.interface !== undefined && item.interface !== null) {
      if (!INTERFACES.includes(item.interface as DiskInterface)) {
        configError(ctx, `${at}.interface`, `one of ${INTERFACES.join(", ")}`, item.interface);
      }
      disk.interface = item.interface as DiskInterface;
      if (cdrom && !CDROM_INTERFACES.includes(disk.interface)) {
        configError(ctx, `${at}.interface`, "ide, sata or scsi for a CD-ROM", item.interface);
      }
    }
    if (item.backing_file !== undefined && item.backing_file !== null) {
      // Relative to the image's directory, as qemu-img (and MAQET) read it.
      const backing = expectString(item.backing_file, `${at}.backing_file`, ctx);
      disk.backingFile = resolvePath(dirnameOf(file), backing, `${at}.backing_file`, ctx);
      if (disk.backingFile === file)
        configError(ctx, `${at}.backing_file`, "a different file from the image itself", backing);
    }
    if (item.backing_format !== undefined && item.backing_format !== null) {
      if (!FORMATS.includes(item.backing_format as DiskFormat)) {
        configError(ctx, `${at}.backing_format`, "qcow2 or raw", item.backing_format);
      }
      if (disk.backingFile === undefined) {
        configError(
          ctx,
          `${at}.backing_format`,
          "used together with backing_file",
          item.backing_format,
          "Add backing_file:",
        );
      }
      disk.backingFormat = item.backing_format as DiskFormat;
    }
    if (disk.backingFile !== undefined) {
      if (type !== "qcow2")
        configError(ctx, `${at}.type`, "qcow2 when backing_file is set (raw has no backing file)", type);
      disk.backingFormat ??= "qcow2";
    }
    if (item.options !== undefined && item.options !== null) {
      disk.options = parseOptionMap(
        item.options,
        `${at}.options`,
        ctx,
        "qemu-img create options such as {cluster_size: 64K}",
      );
    }
    // MAQET's default: a disk that names no size (and has no backing file to inherit one) is 10G.
    if (!cdrom && disk.size === undefined && disk.backingFile === undefined) disk.size = DEFAULT_DISK_SIZE;
    disks.push(disk);
    indexOf.set(disk, i);
  });
  const sata = disks.filter((d) => d.interface === "sata");
  if (sata.length > MAX_SATA_DISKS) {
    const index = indexOf.get(sata[MAX_SATA_DISKS] as DiskDevice);
    configError(
      ctx,
      `storage[${index}].interface`,
      `used by at most ${MAX_SATA_DISKS} disks when sata (one AHCI controller)`,
      "sata",
      "Use virtio for the others",
    );
  }
  return { disks, shares };
}

/**
 * A `type: virtfs` entry. MAQET's code read mount_tag, security_model, readonly and id from an
 * `options:` mapping while its docs put them at the top level: both are accepted, and a key given
 * both ways must agree. Other `options:` keys are passed to -virtfs as key=value, as MAQET did.
 */
function parseShare(
  item: Record<string, unknown>,
  name: string,
  at: string,
  baseDir: string,
  ctx: ConfigContext,
): VirtfsShare {
  const options =
    item.options === undefined || item.options === null
      ? {}
      : parseOptionMap(item.options, `${at}.options`, ctx, "a mapping such as {mount_tag: data, readonly: true}");
  const pick = (key: (typeof VIRTFS_OPTION_KEYS)[number]): unknown => {
    const top = key === "id" ? undefined : item[key];
    const nested = options[key];
    if (top !== undefined && top !== null && nested !== undefined && String(nested) !== String(top)) {
      configError(ctx, `${at}.options.${key}`, `the same as ${at}.${key} (${show(top)}) or left out`, nested);
    }
    return top ?? nested;
  };
  if (item.path === undefined || item.path === null) {
    configError(ctx, `${at}.path`, "the host directory to share (e.g. path: ./share)", item.path, "Add path:");
  }
  const path = resolvePath(baseDir, expectString(item.path, `${at}.path`, ctx), `${at}.path`, ctx);
  // The one rule that needs no filesystem: the whole host is never shared. Real paths (symlinks)
  // and system directories are checked before QEMU starts.
  if (path === "/") {
    throw new MaqetError(
      "PATH_REFUSED",
      `Refusing VirtFS share '${name}' of / (${at}.path in ${ctx.source}): sharing the root directory exposes the whole host. Share a dedicated directory instead, e.g. path: ./share.`,
      { details: { keyPath: `${at}.path`, path, rule: "/" } },
    );
  }
  const mountTag = pick("mount_tag") ?? name;
  if (typeof mountTag !== "string" || !MOUNT_TAG_PATTERN.test(mountTag)) {
    configError(ctx, `${at}.mount_tag`, "1-31 letters, digits, '.', '_' or '-'", mountTag);
  }
  const id = pick("id") ?? name;
  if (typeof id !== "string" || !STORAGE_NAME_PATTERN.test(id) || id.startsWith("maqet-")) {
    configError(ctx, `${at}.options.id`, "a letter followed by up to 30 letters, digits, '.', '_' or '-'", id);
  }
  const securityModel = pick("security_model") ?? "passthrough";
  if (!SECURITY_MODELS.includes(securityModel as VirtfsSecurityModel)) {
    configError(ctx, `${at}.security_model`, `one of ${SECURITY_MODELS.join(", ")}`, securityModel);
  }
  const readonlyValue = pick("readonly") ?? false;
  const readonly = readonlyValue === true || readonlyValue === "on" || readonlyValue === "true";
  if (!readonly && readonlyValue !== false && readonlyValue !== "off" && readonlyValue !== "false") {
    configError(ctx, `${at}.readonly`, "true or false", readonlyValue);
  }
  const share: VirtfsShare = {
    name,
    path,
    mountTag,
    id,
    securityModel: securityModel as VirtfsSecurityModel,
    readonly,
  };
  const extra: Record<string, string> = {};
  for (const [key, v] of Object.entries(options)) {
    if ((VIRTFS_OPTION_KEYS as readonly string[]).includes(key)) continue;
    if (["path", "local", "fsdriver"].includes(key)) {
      configError(ctx, `${at}.options.${key}`, "left out (maqet sets it)", v);
    }
    extra[key] = v === true ? "on" : v === false ? "off" : String(v);
  }
  if (Object.keys(extra).length > 0) share.extra = extra;
  return share;
}

/** A flat mapping of option names to scalars (strings without newlines, numbers, booleans). */
function parseOptionMap(
  value: unknown,
  keyPath: string,
  ctx: ConfigContext,
  expected: string,
): Record<string, string | number | boolean> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) configError(ctx, keyPath, expected, value);
  const out: Record<string, string | number | boolean> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (!OPTION_KEY_PATTERN.test(key)) configError(ctx, `${keyPath}.${key}`, "a lower-case option name", key);
    const ok =
      typeof v === "boolean" ||
      (typeof v === "number" && Number.isFinite(v)) ||
      (typeof v === "string" && v !== "" && !/[\0\n\r]/.test(v));
    if (!ok) configError(ctx, `${keyPath}.${key}`, "a string, number or true/false", v);
    out[key] = v as string | number | boolean;
  }
  return out;
}

function dirnameOf(path: string): string {
  const cut = path.lastIndexOf("/");
  return cut <= 0 ? "/" : path.slice(0, cut);
}

// ---------------------------------------------------------------- helpers
