/**
 * What `start` waits for before it reports success: `qmp` (default: QMP handshake done, `cont`
 * sent, and QEMU says the guest runs), `process` (QEMU's process up, pid verified; no run-state
 * check), `file:<path>` (a file appears — e.g. one the guest writes to a shared directory), or
 * `serial:<regex>` (a pattern on the serial console). A wait that times out fails the command
 * (TIMEOUT, exit 2) and is recorded as `vm.wait-failed`; the VM stays as it is, running.
 *
 * @example
 * ```ts
 * parseWaitCondition("serial:login:"); // { kind: "serial", pattern: /login:/ }
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";
import type { VmPorts } from "./ports.ts";

export type WaitCondition =
  | { kind: "qmp" }
  | { kind: "process" }
  | { kind: "file"; path: string }
  | { kind: "serial"; pattern: RegExp };

/** Parses the CLI form: `qmp`, `process`, `file:<path>`, `serial:<regex>`. */
export function parseWaitCondition(text: string): WaitCondition {
  if (text === "qmp" || text === "process") return { kind: text };
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
      throw new MaqetError("INVALID_ARGUMENT", `--wait-for serial: '${source}' is not a valid regular expression (${(error as Error).message}).`, {
        cause: error,
      });
    }
  }
  throw new MaqetError(
    "INVALID_ARGUMENT",
    `Unknown wait condition '${text}'. Use qmp, process, file:/absolute/path or serial:REGEX.`,
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
    return true;
  };
  for (;;) {
    if (await holds()) return true;
    if (ports.clock.now() >= ctx.deadline) return false;
    await ports.clock.sleep(Math.min(50, Math.max(1, ctx.deadline - ports.clock.now())), ctx.signal);
  }
}
