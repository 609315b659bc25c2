/**
 * One QMP command on a running VM and its facts: `vm.tainted` first for an allowed dangerous
 * command (once per run), then `qmp.command-executed` with the outcome (ok, or QEMU's error class
 * and description for a refusal or a timeout), the duration, the argument names, the policy's
 * tier and rule, and the arguments themselves for the commands whose values are safe to keep.
 * Other failures (a lost connection, an abort) are thrown unrecorded. What the machine observes
 * meanwhile is recorded after the command's fact: cause before effect.
 *
 * @example
 * ```ts
 * const status = await executeRecorded({ command: "query-status", options: {}, decision, session,
 *   clock, tainted: view.taint !== undefined, facts });
 * ```
 */
import { isMaqetError } from "../errors/maqet-error.ts";
import type { NewEvent } from "../events/envelope.ts";
import { vmEvent } from "../events/vm-events.ts";
import type { Clock, QmpExecuteOptions, QmpSession } from "./ports.ts";
import { QMP_VALUE_SAFE_COMMANDS, type QmpDecision } from "./qmp-policy.ts";
import type { VmFactLog } from "./vm-fact-log.ts";

export interface RecordedQmpCall {
  command: string;
  args?: Record<string, unknown>;
  options: QmpExecuteOptions;
  /** The policy's verdict (an allowed one): its tier and rule go into the fact. */
  decision: QmpDecision;
  session: QmpSession;
  clock: Clock;
  /** True when the VM's view carries a taint already (this run's). */
  tainted: boolean;
  facts: Pick<VmFactLog, "record" | "recordApplied" | "metadataNow" | "holdingObservations">;
}

/** Runs the command and records its facts; resolves with QEMU's answer or rethrows its error. */
export async function executeRecorded<T>(call: RecordedQmpCall): Promise<T> {
  const { command, decision, clock, facts } = call;
  const startedAt = clock.now();
  // Once per run, as libvirt logs a taint flag once; every use stays in qmp.command-executed.
  if (decision.taint && !call.tainted) {
    await facts.recordApplied([vmEvent("vm.tainted", { reason: "custom-monitor", command })], facts.metadataNow());
  }
  return facts.holdingObservations(() => executeAndRecord<T>(call, startedAt));
}

async function executeAndRecord<T>(call: RecordedQmpCall, startedAt: number): Promise<T> {
  const { command, args, decision, clock } = call;
  const record = (events: NewEvent[]) => call.facts.record(events);
  const argumentNames = Object.keys(args ?? {});
  const policy = {
    tier: decision.tier,
    rule: decision.rule,
    ...(args && QMP_VALUE_SAFE_COMMANDS.includes(command) ? { arguments: args } : {}),
  };
  try {
    const result = await call.session.execute<T>(command, args, call.options);
    await record([
      vmEvent("qmp.command-executed", {
        command,
        argumentNames,
        outcome: "ok",
        durationMs: clock.now() - startedAt,
        ...policy,
      }),
    ]);
    return result;
  } catch (error) {
    if (isMaqetError(error) && (error.code === "QMP_ERROR" || error.code === "QMP_TIMEOUT")) {
      await record([
        vmEvent("qmp.command-executed", {
          command,
          argumentNames,
          outcome: "error",
          errorClass: String(error.details.class ?? error.code),
          errorDesc: typeof error.details.desc === "string" ? error.details.desc : error.message,
          durationMs: clock.now() - startedAt,
          ...policy,
        }),
      ]);
    }
    throw error;
  }
}
