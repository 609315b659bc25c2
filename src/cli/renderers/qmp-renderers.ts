/**
 * Text output of the QMP helpers (`qmp keys`, `type`, `screendump`, `device-add`, `device-del`).
 * Raw `qmp` always prints QEMU's answer as JSON.
 *
 * @example
 * ```ts
 * QMP_RENDERERS["qmp keys"]({ vm: "web", keys: ["ctrl", "alt", "delete"] }); // "Sent ctrl+alt+delete to VM 'web'."
 * ```
 */
import type { Renderer } from "./renderer.ts";

type R = Record<string, unknown>;

export const QMP_RENDERERS: Record<string, Renderer> = {
  "qmp keys": (r) => `Sent ${((r as R).keys as string[]).join("+")} to VM '${(r as R).vm}'.`,
  "qmp type": (r) => `Typed ${(r as R).characters} characters on VM '${(r as R).vm}'.`,
  "qmp screendump": (r) => `Saved VM '${(r as R).vm}''s display to ${(r as R).file} (${(r as R).format}).`,
  "qmp device-add": (r) => `Added device '${(r as R).id}' (${(r as R).driver}) to VM '${(r as R).vm}'.`,
  "qmp device-del": (r) =>
    `Asked VM '${(r as R).vm}' to unplug device '${(r as R).id}'. QEMU removes it when the unplug completes (at once for USB; PCI needs the guest's agreement).`,
};
