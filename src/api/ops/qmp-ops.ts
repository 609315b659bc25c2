/**
 * Raw QMP on a running VM, recorded as `qmp.command-executed`.
 *
 * @example
 * ```ts
 * await qmpOps(ctx).qmp("web", "query-status");
 * ```
 */
import { MaqetError } from "../../errors/maqet-error.ts";
import type { MaqetContext } from "../maqet-context.ts";

export interface QmpOptions {
  timeoutMs?: number;
}

export interface QmpOps {
  qmp<T = unknown>(name: string, command: string, args?: Record<string, unknown>, options?: QmpOptions): Promise<T>;
}

/** QMP command names: lower-case words with `-` or `_`, nothing that could be an option. */
export const QMP_COMMAND_PATTERN = /^[a-z][a-z0-9_-]*$/;

export function qmpOps(ctx: MaqetContext): QmpOps {
  return {
    qmp: (name, command, args, qmpOptions = {}) => {
      // Checked before the VM is even looked up: a malformed name never reaches QEMU or the store.
      if (!QMP_COMMAND_PATTERN.test(command)) {
        return Promise.reject(
          new MaqetError(
            "INVALID_ARGUMENT",
            `Invalid QMP command name '${command}': it must match ${QMP_COMMAND_PATTERN} (e.g. query-status).`,
          ),
        );
      }
      return ctx.withVm(name, (vm) => vm.qmp(command, args, qmpOptions));
    },
  };
}
