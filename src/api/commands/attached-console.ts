/**
 * A command result that is a live serial console attach (`console -i`): the CLI closes its maqet
 * instance (the attach needs no store), runs the terminal session on it, then records the detach
 * with a new instance. The agent never returns one (it serves `-i` as an upgraded connection).
 *
 * @example
 * ```ts
 * return attachedConsole(await maqet.attachConsole("web", { recordDetach: false }));
 * ```
 */
import type { ConsoleAttachment } from "../ops/console-attach-ops.ts";

const ATTACHED = Symbol.for("maqet.attached-console");

export interface AttachedConsole {
  readonly [ATTACHED]: true;
  readonly attachment: ConsoleAttachment;
}

export function attachedConsole(attachment: ConsoleAttachment): AttachedConsole {
  return { [ATTACHED]: true, attachment };
}

export function isAttachedConsole(value: unknown): value is AttachedConsole {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[ATTACHED] === true;
}
