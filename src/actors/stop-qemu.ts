/**
 * The stop effect, escalating: `system_powerdown` and wait up to the timeout for SHUTDOWN, then
 * `quit`, then SIGTERM, then SIGKILL. `force` goes straight to SIGKILL. Resolves with how the VM
 * really ended, which becomes the `vm.stopped` fact.
 *
 * @example
 * ```ts
 * const ended = await stopQemu(ports, { pid, marker: vmId, session, force: false, timeoutMs: 30000 });
 * // { detail: "shutdown", method: "powerdown", guest: false, reason: "guest-shutdown" }
 * ```
 */
import { filter, firstValueFrom, take } from "rxjs";
import { MaqetError } from "../errors/maqet-error.ts";
import type { StopMethod, VmEventData } from "../events/vm-events.ts";
import type { LaunchedProcess, QmpEvent, QmpSession, VmPorts } from "./ports.ts";

export interface StopInput {
  name: string;
  pid: number;
  /** A string the QEMU command line must contain (the VM id): a reused pid is never killed. */
  marker: string;
  session?: QmpSession;
  launched?: LaunchedProcess;
  force: boolean;
  timeoutMs: number;
  signal?: AbortSignal;
  /**
   * Told each step as it is taken, so the history shows how the VM really ended, with how long
   * the step may wait before the next one (`timeoutMs` for the powerdown).
   */
  onStep?: (step: StopStep, waitMs: number) => void;
  /** A step already recorded with the stop's request (a forced stop's `sigkill`): still told to `onStep`. */
  recordedStep?: StopStep;
}

/** One step of a stop: the ACPI request, then the escalation steps. */
export type StopStep = "powerdown" | EscalationStep;

export type StopOutcome = VmEventData["vm.stopped"];

/** How long each escalation step after the powerdown may take before the next one. */
export const ESCALATION_STEP_MS = { quit: 3000, sigterm: 3000, sigkill: 5000 } as const;

export async function stopQemu(ports: VmPorts, input: StopInput): Promise<StopOutcome> {
  const { processes, clock } = ports;
  const { pid, marker, session, signal } = input;
  ports.crash?.("stop.requested");
  if (processes.probe(pid, marker) !== "alive") {
    return { detail: "exited-unsupervised", method: "none", pid };
  }
  const finish = async (base: Omit<StopOutcome, "pid">): Promise<StopOutcome> => {
    ports.crash?.("stop.exited");
    // A zombie's wait status says now what the exit event says once our event loop reaps it,
    // which a loaded agent busy with the store (a projection's catch-up) does tens of ms later.
    const exit = input.launched
      ? (processes.zombieExit(pid) ?? (await settled(input.launched.exit, clock, 50)))
      : undefined;
    return { ...base, pid, exitCode: exit?.code ?? null, signal: exit?.signal ?? null };
  };
  const escalate = (from: EscalationStep) => escalateStop(ports, input, from);

  if (input.force || session === undefined || session.isClosed) {
    const method = await escalate(input.force ? "sigkill" : "sigterm");
    return finish({ detail: "destroyed", method });
  }

  // Subscribe before asking, so a fast guest's SHUTDOWN cannot slip past.
  const shutdown = firstValueFrom(
    session.events$.pipe(
      filter((e: QmpEvent) => e.event === "SHUTDOWN"),
      take(1),
    ),
    { defaultValue: undefined },
  );
  shutdown.catch(() => undefined);
  input.onStep?.("powerdown", input.timeoutMs);
  await session.execute("system_powerdown", undefined, { timeoutMs: 5000, signal }).catch(() => undefined);
  const seen = await Promise.race([shutdown, clock.sleep(input.timeoutMs, signal).then(() => undefined)]);
  if (seen !== undefined) {
    // With -no-shutdown QEMU stays alive in the "shutdown" state: end it now.
    const method = (await processes.waitGone(pid, marker, 0, signal)) ? "powerdown" : await escalate("quit");
    return finish({
      detail: "shutdown",
      method: method === "quit" ? "powerdown" : method,
      guest: seen.data?.guest === true,
      reason: typeof seen.data?.reason === "string" ? seen.data.reason : undefined,
    });
  }
  if (processes.probe(pid, marker) !== "alive") {
    // It went away on its own, with no SHUTDOWN: that is a crash that happened to coincide.
    return finish({ detail: "crashed", method: "none" });
  }
  const method = await escalate("quit");
  return finish({ detail: "destroyed", method });
}

export type EscalationStep = "quit" | "sigterm" | "sigkill";

/**
 * Ends a QEMU process from the given step on: `quit` over QMP, SIGTERM, SIGKILL, each given its
 * time to work. Resolves with the step that ended it; throws STOP_FAILED if even SIGKILL did not.
 */
export async function escalateStop(
  ports: VmPorts,
  input: Pick<StopInput, "name" | "pid" | "marker" | "session" | "signal" | "onStep" | "launched">,
  from: EscalationStep,
): Promise<StopMethod> {
  const { pid, marker, session, signal } = input;
  const steps: EscalationStep[] = ["quit", "sigterm", "sigkill"];
  for (const step of steps.slice(steps.indexOf(from))) {
    if (step === "quit") {
      if (session === undefined || session.isClosed) continue;
      input.onStep?.(step, ESCALATION_STEP_MS.quit);
      await session.execute("quit", undefined, { timeoutMs: ESCALATION_STEP_MS.quit, signal }).catch(() => undefined);
      ports.crash?.("stop.quit-sent");
    } else {
      input.onStep?.(step, ESCALATION_STEP_MS[step]);
      ports.processes.kill(pid, step === "sigterm" ? "SIGTERM" : "SIGKILL");
    }
    if (await ports.processes.waitGone(pid, marker, ESCALATION_STEP_MS[step], signal, input.launched?.exit))
      return step;
  }
  throw new MaqetError(
    "STOP_FAILED",
    `VM '${input.name}' (pid ${pid}) survived SIGKILL. Check the process with \`ps -o stat,cmd -p ${pid}\`.`,
    { details: { pid } },
  );
}

async function settled<T>(promise: Promise<T>, clock: VmPorts["clock"], ms: number): Promise<T | undefined> {
  return Promise.race([promise, clock.sleep(ms).then(() => undefined)]);
}
