/**
 * Disk images outside any VM's config: create, info, check, resize, convert. Every write is
 * checked like a VM's disks are (system directories refused on the real path, exit 4; a missing
 * parent directory is exit 3; new files 0600, claimed without following symlinks, removed when
 * the operation fails). No store is opened: these work on files only and record no events.
 * Relative paths resolve against the current directory; a relative backing file against the
 * new image's directory, as qemu-img reads it.
 *
 * @example
 * ```ts
 * await maqet.createDisk("/srv/vms/base.qcow2", { format: "qcow2", size: "10G" });
 * await maqet.convertDisk("/srv/vms/base.qcow2", "/srv/vms/base.raw", { format: "raw", onProgress: console.log });
 * ```
 */
import { chmod, rm } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { lastValueFrom, tap } from "rxjs";
import type { ImageCheck, ImageFormat, ImageInfo } from "../../actors/disk-image-port.ts";
import { claimFile, freeBytes, pathExists } from "../../adapters/disk-files.ts";
import { createImageFile, formatBytes, QCOW2_SPACE_FACTOR } from "../../adapters/disk-provisioner.ts";
import { assertDiskPathAllowed } from "../../adapters/path-safety.ts";
import { MaqetError } from "../../errors/maqet-error.ts";
import { diskToolsFor } from "../disk-tools.ts";
import type { MaqetContext } from "../maqet-context.ts";
import { withProgress } from "../progress-hub.ts";

export interface CreateDiskOptions {
  format: ImageFormat;
  /** `10G`, `512M`, bytes; optional with a backing file. */
  size?: string;
  backingFile?: string;
  backingFormat?: ImageFormat;
  /** `qemu-img create -o` options. */
  options?: Record<string, string | number | boolean>;
  signal?: AbortSignal;
}

export interface DiskCreated {
  file: string;
  format: ImageFormat;
  size?: string;
  backingFile?: string;
  durationMs: number;
}

export interface ConvertDiskOptions {
  format: ImageFormat;
  sourceFormat?: ImageFormat;
  compress?: boolean;
  /** 0–100 while it runs (also on `maqet.progress$`). */
  onProgress?: (percent: number) => void;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface DiskConverted {
  source: string;
  target: string;
  format: ImageFormat;
  virtualSize: number;
  durationMs: number;
}

export interface DiskOps {
  createDisk(file: string, options: CreateDiskOptions): Promise<DiskCreated>;
  diskInfo(file: string, options?: { signal?: AbortSignal }): Promise<ImageInfo>;
  checkDisk(file: string, options?: { format?: ImageFormat; signal?: AbortSignal }): Promise<ImageCheck>;
  resizeDisk(
    file: string,
    size: string,
    options?: { shrink?: boolean; format?: ImageFormat; signal?: AbortSignal },
  ): Promise<{ file: string; size: string; virtualSize: number }>;
  convertDisk(source: string, target: string, options: ConvertDiskOptions): Promise<DiskConverted>;
}

export function diskOps(ctx: MaqetContext): DiskOps {
  const tools = () => diskToolsFor(ctx.options);
  return {
    async createDisk(fileArg, options) {
      const { qemuImg, clock } = tools();
      const file = resolve(fileArg);
      await assertDiskPathAllowed(file);
      if (await pathExists(file)) throw alreadyExists(file);
      const t0 = clock.now();
      const spec = {
        format: options.format,
        ...(options.size !== undefined ? { size: options.size } : {}),
        ...(options.backingFile !== undefined
          ? {
              backingFile: resolve(dirname(file), options.backingFile),
              backingFormat: options.backingFormat ?? "qcow2",
            }
          : {}),
        ...(options.options !== undefined ? { options: options.options } : {}),
      } as const;
      if (spec.size === undefined && !("backingFile" in spec)) {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          `Creating ${file} needs a size (e.g. --size 10G) or a backing file (--backing base.qcow2).`,
        );
      }
      if (!(await createImageFile(file, spec, { tool: qemuImg, signal: options.signal, skipGuard: true }))) {
        throw alreadyExists(file);
      }
      return {
        file,
        format: options.format,
        ...(spec.size !== undefined ? { size: spec.size } : {}),
        ...("backingFile" in spec ? { backingFile: spec.backingFile } : {}),
        durationMs: clock.now() - t0,
      };
    },

    diskInfo: async (file, options = {}) => tools().qemuImg.info(await existing(file), options),

    checkDisk: async (file, options = {}) => tools().qemuImg.check(await existing(file), options),

    async resizeDisk(fileArg, size, options = {}) {
      const { qemuImg } = tools();
      const file = await existing(fileArg);
      await assertDiskPathAllowed(file);
      await qemuImg.resize(file, size, options);
      const info = await qemuImg.info(file, { signal: options.signal });
      return { file, size, virtualSize: info.virtualSize };
    },

    async convertDisk(sourceArg, targetArg, options) {
      const { qemuImg, clock } = tools();
      const source = await existing(sourceArg);
      const target = resolve(targetArg);
      await assertDiskPathAllowed(target);
      if (await pathExists(target)) throw alreadyExists(target);
      if (!(await pathExists(dirname(target)))) {
        throw new MaqetError(
          "PATH_NOT_FOUND",
          `Cannot convert into ${target}: its directory ${dirname(target)} does not exist. Create it first (mkdir -p ${dirname(target)}).`,
          { details: { path: target, parent: dirname(target), rule: "parent-exists" } },
        );
      }
      const info = await qemuImg.info(source, { signal: options.signal });
      const need = Math.ceil((info.actualSize ?? info.virtualSize) * QCOW2_SPACE_FACTOR);
      const have = await freeBytes(dirname(target));
      if (have < need) {
        throw new MaqetError(
          "INSUFFICIENT_SPACE",
          `Insufficient disk space to convert ${source} into ${target}: need about ${formatBytes(need)} (the source's allocated size × 1.1), have ${formatBytes(have)}. Free some space or choose another directory.`,
          { details: { path: target, needBytes: need, freeBytes: have } },
        );
      }
      if (!(await claimFile(target))) throw alreadyExists(target);
      const t0 = clock.now();
      try {
        await withProgress(ctx, "disk.convert", target, options.onProgress, (report) =>
          lastValueFrom(
            qemuImg
              .convert(
                source,
                target,
                { outputFormat: options.format, sourceFormat: options.sourceFormat, compress: options.compress },
                { signal: options.signal, timeoutMs: options.timeoutMs },
              )
              .pipe(tap((p) => report(p.percent))),
            { defaultValue: undefined },
          ),
        );
        await chmod(target, 0o600); // qemu-img reopened our claimed file; keep it private whatever the umask
      } catch (error) {
        await rm(target, { force: true }).catch(() => undefined);
        throw error;
      }
      return { source, target, format: options.format, virtualSize: info.virtualSize, durationMs: clock.now() - t0 };
    },
  };
}

/** The absolute path of an image that must exist (PATH_NOT_FOUND, exit 3, otherwise). */
async function existing(fileArg: string): Promise<string> {
  const file = resolve(fileArg);
  if (!(await pathExists(file))) {
    throw new MaqetError(
      "PATH_NOT_FOUND",
      `Image ${file} does not exist. Check the path (relative paths start in the current directory).`,
      {
        details: { path: file, rule: "exists" },
      },
    );
  }
  return file;
}

function alreadyExists(file: string): MaqetError {
  return new MaqetError(
    "INVALID_ARGUMENT",
    `${file} already exists; maqet never overwrites an image. Remove it or choose another path.`,
    {
      details: { path: file },
    },
  );
}
