/**
 * The interactive serial console (`maqet console VM -i`): attach to the guest's first serial port
 * through QEMU's console socket, beside the log QEMU keeps writing. One writer at a time (the
 * seat: src/actors/console-seat.ts), any number of read-only watchers. Who attached and who
 * detached are facts in the VM's stream (`vm.console-attached` / `vm.console-detached`, with the
 * caller as the envelope's actor).
 *
 * `attachConsole` reads the store once (state, runtime directory), takes the seat and records the
 * attach; the connection it opens needs no store, so the CLI closes its instance (releasing the
 * embedded store's lock) for as long as the user stays attached, and records the detach with a
 * new one ({@link ConsoleAttachOps.recordConsoleDetached}). A library user leaves that to the
 * attachment (the default): the detach is recorded when the connection ends.
 *
 * @example
 * ```ts
 * const attachment = await maqet.attachConsole("web");
 * const conn = await attachment.open((bytes) => process.stdout.write(bytes));
 * conn.write(new TextEncoder().encode("uname -a\r"));
 * setTimeout(() => conn.close("detached"), 2000);
 * await attachment.detached; // vm.console-detached recorded
 * ```
 */
import type { ConsoleHolder } from "../../actors/console-seat.ts";
import { runtimePaths } from "../../actors/runtime-paths.ts";
import { acquireConsoleLock, consoleHost, releaseConsoleLock } from "../../adapters/console-lock.ts";
import { systemActor } from "../../adapters/open-event-store.ts";
import { procStat } from "../../adapters/process-identity.ts";
import {
  type ConsoleConnection,
  type ConsoleEnd,
  isConsoleSocket,
  openSerialConnection,
} from "../../adapters/serial-connection.ts";
import { MaqetError } from "../../errors/maqet-error.ts";
import type { ConsoleDetachReason, ConsoleHolderFacts, ConsoleMode } from "../../events/console-events.ts";
import { vmEvent } from "../../events/vm-events.ts";
import type { MaqetContext } from "../maqet-context.ts";
import { configSetsSerial } from "../serial-log.ts";

export type { ConsoleConnection, ConsoleEnd } from "../../adapters/serial-connection.ts";

export interface AttachConsoleOptions {
  /** Take the writer seat from whoever holds it (they are detached, `taken-over`). */
  force?: boolean;
  /** Watch only: no seat, no typing; any number may. */
  readOnly?: boolean;
  /**
   * Record `vm.console-detached` when the connection ends (default true). The CLI turns it off:
   * it closes its instance while attached and records the detach itself.
   */
  recordDetach?: boolean;
}

export interface ConsoleAttachment {
  vm: string;
  vmId: string;
  session: string;
  mode: ConsoleMode;
  /** When it attached (ISO 8601). */
  since: string;
  takeover?: "forced" | "stale";
  takenOverFrom?: ConsoleHolderFacts;
  /** Opens the connection: the guest's output goes to `onData` (store-free from here on). */
  open(onData: (bytes: Uint8Array) => void): Promise<ConsoleConnection>;
  /** Resolves once the detach is recorded (with `recordDetach`), or at once after the end without it. */
  readonly detached: Promise<ConsoleEnd>;
}

export interface ConsoleDetachFacts {
  session: string;
  mode: ConsoleMode;
  reason: ConsoleDetachReason;
  /** When the attach began (ISO 8601): gives the duration. */
  since: string;
  message?: string;
}

export interface ConsoleAttachOps {
  /** Attaches to a running VM's serial console (see the module comment). */
  attachConsole(name: string, options?: AttachConsoleOptions): Promise<ConsoleAttachment>;
  /** Records that an attach ended (`vm.console-detached`), for an attachment made with `recordDetach: false`. */
  recordConsoleDetached(name: string, facts: ConsoleDetachFacts): Promise<void>;
}

export function consoleAttachOps(ctx: MaqetContext): ConsoleAttachOps {
  const now = (): number => ctx.options.ports?.clock?.now() ?? Date.now();
  const recordDetached = (name: string, facts: ConsoleDetachFacts): Promise<void> =>
    ctx.withVm(name, (vm) =>
      vm.exclusive(async (access) => {
        await access.record([
          vmEvent("vm.console-detached", {
            session: facts.session,
            mode: facts.mode,
            reason: facts.reason,
            durationMs: Math.max(0, now() - Date.parse(facts.since)),
            ...(facts.message ? { message: facts.message } : {}),
          }),
        ]);
      }),
    );

  return {
    recordConsoleDetached: recordDetached,
    attachConsole: async (name, options = {}) => {
      const mode: ConsoleMode = options.readOnly === true ? "read-only" : "read-write";
      const session = crypto.randomUUID();
      let since = "";
      const attached = await ctx.withVm(name, (vm) =>
        vm.exclusive(async (access) => {
          since = new Date(now()).toISOString();
          const view = access.view;
          if (view.status !== "running" && view.status !== "paused") {
            throw new MaqetError(
              "VM_INVALID_STATE",
              `VM '${view.name}' is ${view.status}: its serial console is there only while it runs. Start it with \`maqet start ${view.name}\`, or read the last run's log with \`maqet console ${view.name}\`.`,
              { details: { vm: view.name, state: view.status } },
            );
          }
          if (configSetsSerial(view.config)) {
            throw new MaqetError(
              "VM_INVALID_STATE",
              `VM '${view.name}' has no console socket: its config sets its own -serial. Remove -serial from its arguments/args (and restart it) to use \`maqet console -i\`.`,
              { details: { vm: view.name } },
            );
          }
          const paths = runtimePaths(view.runtimeDir!);
          if (!(await isConsoleSocket(paths.serialSocket))) {
            throw new MaqetError(
              "VM_INVALID_STATE",
              `VM '${view.name}' has no console socket (${paths.serialSocket}): it was started by an older maqet, which wrote the serial console to a file only. Restart it (\`maqet stop ${view.name}\`, then \`maqet start ${view.name}\`) to use \`maqet console -i\`; \`maqet console ${view.name} --follow\` works meanwhile.`,
              { details: { vm: view.name, socket: paths.serialSocket } },
            );
          }
          let decision: Awaited<ReturnType<typeof acquireConsoleLock>>["decision"] | undefined;
          if (mode === "read-write") {
            decision = (
              await acquireConsoleLock(paths.consoleLock, holderFor(ctx, session, since, view.pid), {
                force: options.force === true,
                host: consoleHost(),
                vm: view.name,
                ...(view.pid !== undefined ? { qemuPid: view.pid } : {}),
              })
            ).decision;
          }
          const previous = decision?.kind === "forced" || decision?.kind === "stale" ? decision.previous : undefined;
          try {
            await access.record([
              vmEvent("vm.console-attached", {
                session,
                mode,
                ...(previous
                  ? { takeover: decision!.kind as "forced" | "stale", takenOverFrom: factsOf(previous) }
                  : {}),
              }),
            ]);
          } catch (error) {
            await releaseConsoleLock(paths.consoleLock, session);
            throw error;
          }
          const pid = view.pid;
          const processes = access.ports.processes;
          return {
            vm: view.name,
            vmId: view.vmId,
            paths,
            previous,
            takeover: previous ? (decision!.kind as "forced" | "stale") : undefined,
            processGone: async () => pid === undefined || processes.probe(pid, view.vmId) !== "alive",
          };
        }),
      );
      let resolveDetached!: (end: ConsoleEnd) => void;
      const detached = new Promise<ConsoleEnd>((resolve) => {
        resolveDetached = resolve;
      });
      return {
        vm: attached.vm,
        vmId: attached.vmId,
        session,
        mode,
        since,
        ...(attached.takeover ? { takeover: attached.takeover } : {}),
        ...(attached.previous ? { takenOverFrom: factsOf(attached.previous) } : {}),
        detached,
        open: async (onData) => {
          const conn = await openSerialConnection(
            {
              vm: attached.vm,
              mode,
              session,
              socket: attached.paths.serialSocket,
              log: attached.paths.serialLog,
              lock: attached.paths.consoleLock,
              processGone: attached.processGone,
            },
            onData,
          ).catch(async (error: unknown) => {
            const message = error instanceof Error ? error.message : String(error);
            if (options.recordDetach !== false) {
              await recordDetached(attached.vm, { session, mode, reason: "error", since, message }).catch(
                () => undefined,
              );
            }
            resolveDetached({ reason: "error", message });
            throw error;
          });
          void conn.ended.then(async (end) => {
            if (options.recordDetach !== false) {
              await recordDetached(attached.vm, {
                session,
                mode,
                reason: end.reason,
                since,
                ...(end.message ? { message: end.message } : {}),
              }).catch((error: unknown) =>
                ctx.options.onWarning?.(`could not record the console detach: ${String(error)}`),
              );
            }
            resolveDetached(end);
          });
          return conn;
        },
      };
    },
  };
}

/** The seat's record for this attach: the caller (an agent's client) or this process. */
function holderFor(ctx: MaqetContext, session: string, since: string, qemuPid: number | undefined): ConsoleHolder {
  const me = systemActor();
  const caller = ctx.caller;
  const start = procStat(process.pid)?.startTime;
  return {
    session,
    since,
    user: caller?.user ?? me.user,
    ...((caller?.uid ?? me.uid) !== undefined ? { uid: caller?.uid ?? me.uid } : {}),
    host: caller?.host ?? me.host,
    pid: caller?.pid ?? me.pid,
    source: caller?.source ?? ctx.options.source ?? "library",
    holderPid: process.pid,
    holderHost: consoleHost(),
    ...(start !== undefined ? { holderStart: start } : {}),
    ...(qemuPid !== undefined ? { qemuPid } : {}),
  };
}

function factsOf(holder: ConsoleHolder): ConsoleHolderFacts {
  const { holderHost: _h, holderStart: _s, qemuPid: _q, ...facts } = holder;
  return facts;
}
