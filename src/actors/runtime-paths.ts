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

export interface RuntimePaths {
  qmpSocket: string;
  pidFile: string;
  serialLog: string;
  logFile: string;
  /** Where the start writes the NoCloud seed (`cloud-init:` only). */
  seedImage: string;
}

export function runtimePaths(runtimeDir: string): RuntimePaths {
  return {
    qmpSocket: `${runtimeDir}/qmp.sock`,
    pidFile: `${runtimeDir}/qemu.pid`,
    serialLog: `${runtimeDir}/${SERIAL_LOG_FILE}`,
    logFile: `${runtimeDir}/qemu.log`,
    seedImage: `${runtimeDir}/${SEED_IMAGE_FILE}`,
  };
}
