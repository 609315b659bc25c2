/**
 * Where maqet captures a VM's serial console: `serial.log` in the VM's runtime directory, written
 * by QEMU (the log of the console socket chardev, which the argv builder adds unless the config
 * sets its own `-serial`).
 * QEMU truncates the file when it opens it: the log holds the current run, or the last one.
 *
 * @example
 * ```ts
 * serialLogPath(view); // "/run/user/1000/maqet/<vmId>/serial.log", or undefined
 * ```
 */
import type { VmView } from "../actors/vm-view.ts";
import { renderArguments } from "../config/render-arguments.ts";
import type { VmConfig } from "../config/vm-config.ts";

/** The file name, as launch-qemu.ts gives it to the argv builder. */
export { SERIAL_LOG_FILE } from "../actors/runtime-paths.ts";

import { SERIAL_LOG_FILE } from "../actors/runtime-paths.ts";

/** True when the config routes the first serial port itself, so maqet adds no `-serial file:` (see qemu-argv.ts). */
export function configSetsSerial(config: VmConfig): boolean {
  const words = [...renderArguments(config.arguments), ...config.args];
  return words.some((word) => word === "-serial" || word === "--serial");
}

/** The serial log of the VM's current or last run; undefined before its first run or when not captured. */
export function serialLogPath(view: Pick<VmView, "runtimeDir" | "config">): string | undefined {
  if (view.runtimeDir === undefined || configSetsSerial(view.config)) return undefined;
  return `${view.runtimeDir}/${SERIAL_LOG_FILE}`;
}
