/**
 * Reading QMP's messages: the greeting QEMU sends first, and the `error` member of a reply.
 *
 * @example
 * ```ts
 * parseGreeting({ QMP: { version: { qemu: { major: 9, minor: 2, micro: 0 }, package: "" }, capabilities: ["oob"] } }, path);
 * qmpErrorFields({ class: "DeviceNotFound", desc: "Device 'nic0' not found" });
 * ```
 */
import type { QmpGreeting } from "../actors/ports.ts";
import { MaqetError } from "../errors/maqet-error.ts";

/** Validates `{"QMP": {"version": {"qemu": {...}, "package"}, "capabilities": [...]}}`; extra keys are fine. */
export function parseGreeting(msg: Record<string, unknown>, socketPath: string): QmpGreeting {
  const qmp = msg.QMP as { version?: { qemu?: Record<string, unknown>; package?: unknown }; capabilities?: unknown };
  const qemu = qmp?.version?.qemu;
  const numbers = [qemu?.major, qemu?.minor, qemu?.micro];
  if (typeof qmp !== "object" || qmp === null || !numbers.every((n) => typeof n === "number")) {
    throw new MaqetError(
      "QMP_PROTOCOL",
      `Bad QMP greeting on ${socketPath}: expected {"QMP": {"version": {"qemu": {major, minor, micro}}}}, got ${JSON.stringify(msg).slice(0, 200)}. Is this a QMP socket (-qmp, not -monitor or -serial)?`,
      { details: { socketPath, greeting: msg } },
    );
  }
  const [major, minor, micro] = numbers as number[];
  const capabilities = Array.isArray(qmp.capabilities) ? qmp.capabilities.map(String) : [];
  const pkg = typeof qmp.version?.package === "string" ? qmp.version.package : "";
  return { version: { qemu: { major: major!, minor: minor!, micro: micro! }, package: pkg }, capabilities };
}

/** The class and description of a QMP `error` member, tolerating a malformed one. */
export function qmpErrorFields(error: unknown): { errorClass: string; desc: string } {
  const e = (typeof error === "object" && error !== null ? error : {}) as { class?: unknown; desc?: unknown };
  return {
    errorClass: typeof e.class === "string" ? e.class : "GenericError",
    desc: typeof e.desc === "string" ? e.desc : JSON.stringify(error),
  };
}
