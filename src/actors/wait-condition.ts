/**
 * What `start` waits for before it reports success: `qmp` (default: QMP handshake done, `cont`
 * sent, and QEMU says the guest runs), `process` (QEMU's process up, pid verified; no run-state
 * check), `file:<path>` (a file appears — e.g. one the guest writes to a shared directory), or
 * `serial:<regex>` (a pattern on the serial console), or `ssh` (the guest's SSH server answers on
 * the host port forwarded to guest port 22: its `SSH-2.0-…` identification line, read through the
 * forward; needs `ports:` with a forward to 22). A wait that times out fails the command
 * (TIMEOUT, exit 2) and is recorded as `vm.wait-failed`; the VM stays as it is, running.
 *
 * @example
 * ```ts
 * parseWaitCondition("serial:login:"); // { kind: "serial", pattern: /login:/ }
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";
import { vmEvent } from "../events/vm-events.ts";
import type { OperationScope } from "./operation-scope.ts";
import type { QmpSession, VmPorts } from "./ports.ts";
import { runtimePaths } from "./runtime-paths.ts";
import type { VmAccess } from "./vm-actor.ts";
import type { VmView } from "./vm-view.ts";

export type WaitCondition =
  | { kind: "qmp" }
  | { kind: "process" }
  | { kind: "file"; path: string }
  | { kind: "serial"; pattern: RegExp }
  | { kind: "ssh" };

/** Parses the CLI form: `qmp`, `process`, `ssh`, `file:<path>`, `serial:<regex>`. */
export function parseWaitCondition(text: string): WaitCondition {
  if (text === "qmp" || text === "process" || text === "ssh") return { kind: text };
  if (text.startsWith("file:") && text.length > 5) {
    const path = text.slice(5);
    if (!path.startsWith("/")) {
      throw new MaqetError("INVALID_ARGUMENT", `--wait-for file: needs an absolute path (got '${path}').`);
    }
    return { kind: "file", path };
  }
  if (text.startsWith("serial:") && text.length > 7) {
    const source = text.slice(7);
    try {
      return { kind: "serial", pattern: new RegExp(source) };
    } catch (error) {
      throw new MaqetError(
        "INVALID_ARGUMENT",
        `--wait-for serial: '${source}' is not a valid regular expression (${(error as Error).message}).`,
        {
          cause: error,
        },
      );
    }
  }
  throw new MaqetError(
    "INVALID_ARGUMENT",
    `Unknown wait condition '${text}'. Use qmp, process, ssh, file:/absolute/path or serial:REGEX.`,
  );
}

/** How a condition is written back in facts and messages. */
export function describeWaitCondition(condition: WaitCondition): string {
  switch (condition.kind) {
    case "file":
      return `file:${condition.path}`;
    case "serial":
      return `serial:${condition.pattern.source}`;
    default:
      return condition.kind;
  }
}

export interface WaitContext {
  /** The serial log of this run (QEMU truncates it at start). */
  serialLog?: string;
  /** `ssh`: the host end of the forward to guest port 22 in this run. */
  ssh?: { host: string; port: number };
  deadline: number;
  signal?: AbortSignal;
}

/**
 * Waits (polling every 50 ms on the injected clock) until the condition holds; false when the
 * deadline passes first. `qmp` and `process` hold once the start itself has returned.
 */
export async function waitForCondition(ports: VmPorts, condition: WaitCondition, ctx: WaitContext): Promise<boolean> {
  const holds = async (): Promise<boolean> => {
    if (condition.kind === "file") return ports.files.exists(condition.path);
    if (condition.kind === "serial") {
      const text = ctx.serialLog === undefined ? undefined : await ports.files.readText(ctx.serialLog);
      return text !== undefined && condition.pattern.test(text);
    }
    if (condition.kind === "ssh") {
      const probe = ports.guest?.probe;
      if (probe === undefined || ctx.ssh === undefined) return false;
      const left = Math.max(1, ctx.deadline - ports.clock.now());
      return probe.sshAnswers(ctx.ssh.host, ctx.ssh.port, Math.min(3000, left));
    }
    return true;
  };
  // A connection per try for ssh: a slower pace than a file check.
  const interval = condition.kind === "ssh" ? 250 : 50;
  for (;;) {
    if (await holds()) return true;
    if (ports.clock.now() >= ctx.deadline) return false;
    await ports.clock.sleep(Math.min(interval, Math.max(1, ctx.deadline - ports.clock.now())), ctx.signal);
  }
}

/**
 * The end of a start: waits for the condition on the started VM (the caller holds the VM's
 * lock), telling the start's scope what it waits for; a wait that does not hold records `vm.wait-failed` and throws TIMEOUT (exit 2), leaving
 * the VM running.
 */
export async function awaitStartCondition(
  access: VmAccess,
  waitFor: WaitCondition,
  limits: { deadline: number; timeoutMs: number; scope?: OperationScope },
): Promise<void> {
  const { ports, view } = access;
  const ssh = waitFor.kind === "ssh" ? sshEndpoint(view) : undefined;
  // Only a condition the caller chose is worth telling (QMP up is part of any start).
  if (waitFor.kind !== "qmp") {
    limits.scope?.onStep?.(view.name, {
      operation: "vm.start",
      step: "wait",
      waitMs: Math.max(0, limits.deadline - ports.clock.now()),
      pid: view.pid,
      condition: ssh ? `ssh:${ssh.host}:${ssh.port}` : describeWaitCondition(waitFor),
    });
  }
  const held =
    waitFor.kind === "qmp"
      ? await untilGuestRuns(ports, access.session, limits.deadline)
      : await waitForCondition(ports, waitFor, {
          serialLog: view.runtimeDir ? runtimePaths(view.runtimeDir).serialLog : undefined,
          deadline: limits.deadline,
          ...(ssh ? { ssh } : {}),
        });
  if (held) return;
  const condition = describeWaitCondition(waitFor);
  await access.record([vmEvent("vm.wait-failed", { condition, timeoutMs: limits.timeoutMs })]);
  throw new MaqetError(
    "TIMEOUT",
    `VM '${view.name}' started (pid ${view.pid}), but '${condition}' did not happen within ${limits.timeoutMs / 1000} s. ` +
      `It is still running: look at \`maqet console ${view.name}\`, or stop it with \`maqet stop ${view.name}\`.`,
    { details: { condition, timeoutMs: limits.timeoutMs, pid: view.pid } },
  );
}

/**
 * The host end of the forward to guest TCP port 22 (this run's, from `vm.started`); throws
 * INVALID_ARGUMENT when the VM has none.
 *
 * @example
 * ```ts
 * sshEndpoint(view); // { host: "127.0.0.1", port: 41873 }
 * ```
 */
export function sshEndpoint(view: Pick<VmView, "name" | "forwards" | "config">): { host: string; port: number } {
  const forwards = view.forwards ?? view.config.ports ?? [];
  const forward = forwards.find((f) => f.guestPort === 22 && f.protocol === "tcp");
  if (forward === undefined) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `VM '${view.name}' forwards no host port to guest port 22, so its SSH server cannot be reached. Add one to its config: ports: ["0:22"] (0 picks a free host port), then restart it.`,
      { details: { vm: view.name } },
    );
  }
  // A forward bound to every address is reached through the loopback.
  return { host: forward.hostIp === "0.0.0.0" ? "127.0.0.1" : forward.hostIp, port: forward.hostPort };
}

/** `qmp`: after `cont`, QEMU must say the guest runs (a guest that stopped at once did not start). */
async function untilGuestRuns(ports: VmPorts, session: QmpSession | undefined, deadline: number): Promise<boolean> {
  for (;;) {
    const info = await session
      ?.execute<{ running: boolean }>("query-status", undefined, { timeoutMs: 5000 })
      .catch(() => undefined);
    if (info?.running) return true;
    if (ports.clock.now() >= deadline) return false;
    await ports.clock.sleep(50);
  }
}
