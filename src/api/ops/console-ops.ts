/**
 * The VM's serial console as maqet captures it: QEMU writes the guest's first serial port to
 * `serial.log` in the VM's runtime directory (the log of the console socket's chardev, or
 * `-serial file:…` for a VM started before `console -i`; added unless the config sets its own
 * `-serial`). QEMU truncates that file when it opens it, so the log holds the current run, or
 * the last one while the VM is stopped; a new start begins it afresh. Attaching interactively
 * is console-attach-ops.ts.
 *
 * `console(name)` reads the store once (where the log is, and which QEMU writes it); `read()` and
 * `follow$()` then touch only the file and /proc, never the store. So a caller can close its
 * maqet instance (releasing the embedded store's single-process lock) and keep following: the
 * CLI's `console --follow` does exactly that.
 *
 * @example
 * ```ts
 * const serial = await maqet.console("web");
 * console.log(await serial.read());
 * serial.follow$().subscribe((text) => process.stdout.write(text)); // until QEMU exits
 * ```
 */
import { dirname, join } from "node:path";
import type { Observable } from "rxjs";
import { followFile, readTextFile } from "../../adapters/file-follower.ts";
import { createProcessControl } from "../../adapters/process-control.ts";
import { MaqetError } from "../../errors/maqet-error.ts";
import type { MaqetContext } from "../maqet-context.ts";
import { configSetsSerial, SERIAL_LOG_FILE } from "../serial-log.ts";

export interface FollowOptions {
  /** Start with the whole log (default) or only with what is written from now on. */
  fromStart?: boolean;
  /** How often to look for new output. Default 100 ms. */
  pollIntervalMs?: number;
}

export interface SerialConsole {
  /** The VM's name. */
  vm: string;
  /** Absolute path of the serial log. */
  path: string;
  /** The VM's state when `console()` looked (running, paused, stopped, …). */
  state: string;
  /** The log as it is now ("" when QEMU has not created it, or the runtime dir was cleared). */
  read(): Promise<string>;
  /**
   * The log, then what the guest prints next, as it comes (`tail -f`); completes once the VM's
   * QEMU process has exited (after a last read), at once for a stopped VM. Unsubscribe to stop
   * earlier. Needs no store: it watches the file and the process (/proc) only.
   */
  follow$(options?: FollowOptions): Observable<string>;
}

export interface ConsoleOps {
  /** Where a VM's serial console is captured, to read or follow. */
  console(name: string): Promise<SerialConsole>;
}

export function consoleOps(ctx: MaqetContext): ConsoleOps {
  return {
    console: (name) =>
      ctx.operation(async (_rt, orchestrator) => {
        const view = await orchestrator.liveView(name);
        if (configSetsSerial(view.config)) {
          throw new MaqetError(
            "VM_INVALID_STATE",
            `VM '${view.name}' has no serial log: its config sets its own -serial, so maqet captures nothing. Remove -serial from its arguments/args to let maqet capture the console in ${SERIAL_LOG_FILE}.`,
            { details: { vm: view.name } },
          );
        }
        if (view.runtimeDir === undefined) {
          const fix =
            view.status === "starting"
              ? "It is starting for the first time; retry once it runs."
              : `Start it with \`maqet start ${view.name}\`.`;
          throw new MaqetError(
            "VM_INVALID_STATE",
            `VM '${view.name}' has no serial log yet: it has never run. ${fix}`,
            {
              details: { vm: view.name, state: view.status },
            },
          );
        }
        const runtimeDir = view.runtimeDir;
        const path = join(runtimeDir, SERIAL_LOG_FILE);
        const processes = ctx.options.ports?.processes ?? createProcessControl({ runtimeRoot: dirname(runtimeDir) });
        const running = view.status !== "stopped" && view.status !== "removed";
        const pid = running ? view.pid : undefined;
        const pidFile = join(runtimeDir, "qemu.pid");
        // QEMU is what writes the log: following ends when it is gone. Without a recorded pid
        // (a start still in progress) the pidfile says which process to watch.
        const writerGone = async (): Promise<boolean> => {
          if (!running) return true;
          const current = pid ?? (await processes.readPidFile(pidFile));
          if (current === undefined) return view.status !== "starting";
          return processes.probe(current, view.vmId) !== "alive";
        };
        return {
          vm: view.name,
          path,
          state: view.status,
          read: () => readTextFile(path),
          follow$: (options = {}) =>
            followFile(path, {
              from: options.fromStart === false ? "end" : 0,
              pollIntervalMs: options.pollIntervalMs,
              clock: ctx.options.ports?.clock,
              isDone: writerGone,
            }),
        };
      }),
  };
}
