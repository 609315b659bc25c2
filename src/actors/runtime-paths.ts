/**
 * The files of one VM run inside its runtime directory: one place for their names, used by the
 * start, the reconcile of an interrupted start, wait conditions and the serial console.
 *
 * @example
 * ```ts
 * runtimePaths("/run/user/1000/maqet/<vm-id>").qmpSocket; // ".../qmp.sock"
 * ```
 */
export const SERIAL_LOG_FILE = "serial.log";
/** The NoCloud seed image of a VM with `cloud-init:` (rebuilt at each start). */
export const SEED_IMAGE_FILE = "cidata.iso";
/** The serial console's socket (QEMU listens; `maqet console -i` connects). */
export const SERIAL_SOCKET_FILE = "serial.sock";
/** The chardev id QEMU gives the first serial port when it has a console socket (qemu-argv.ts). */
export const SERIAL_CHARDEV_ID = "maqet-serial0";
/** Who holds the serial console's one writer seat (src/adapters/console-lock.ts). */
export const CONSOLE_LOCK_FILE = "console.lock";

export interface RuntimePaths {
  qmpSocket: string;
  pidFile: string;
  serialLog: string;
  serialSocket: string;
  consoleLock: string;
  logFile: string;
  /** Where the start writes the NoCloud seed (`cloud-init:` only). */
  seedImage: string;
}

export function runtimePaths(runtimeDir: string): RuntimePaths {
  return {
    qmpSocket: `${runtimeDir}/qmp.sock`,
    pidFile: `${runtimeDir}/qemu.pid`,
    serialLog: `${runtimeDir}/${SERIAL_LOG_FILE}`,
    serialSocket: `${runtimeDir}/${SERIAL_SOCKET_FILE}`,
    consoleLock: `${runtimeDir}/${CONSOLE_LOCK_FILE}`,
    logFile: `${runtimeDir}/qemu.log`,
    seedImage: `${runtimeDir}/${SEED_IMAGE_FILE}`,
  };
}
