/**
 * The qemu-img adapter and image-file facts a maqet instance uses, without opening the store:
 * `maqet disk …` works on any image even when the store is locked or unreachable. The locator is
 * the one the runtime picks (the same process-wide instance), so binaries are still looked up
 * once per process and the qemu-img version read once.
 *
 * @example
 * ```ts
 * const { qemuImg } = diskToolsFor(ctx.options);
 * await qemuImg.info("/srv/vms/web.qcow2");
 * ```
 */
import type { ImageFiles } from "../actors/disk-image-port.ts";
import type { BinaryLocator, Clock } from "../actors/ports.ts";
import { locatorForEnv, sharedBinaryLocator } from "../adapters/binary-locator.ts";
import { imageFiles } from "../adapters/disk-files.ts";
import { type QemuImg, qemuImgFor } from "../adapters/qemu-img.ts";
import { systemClock } from "../adapters/system-clock.ts";
import type { MaqetOptions } from "./maqet-options.ts";

export interface DiskTools {
  locator: BinaryLocator;
  qemuImg: QemuImg;
  files: ImageFiles;
  clock: Clock;
}

/** The locator the runtime uses for these options (runtime.ts picks it the same way). */
export function locatorFor(options: MaqetOptions): BinaryLocator {
  const env = options.env ?? {};
  return options.ports?.locator ?? (env.PATH === undefined ? sharedBinaryLocator() : locatorForEnv(env));
}

export function diskToolsFor(options: MaqetOptions): DiskTools {
  const locator = locatorFor(options);
  return { locator, qemuImg: qemuImgFor(locator), files: imageFiles, clock: options.ports?.clock ?? systemClock };
}
