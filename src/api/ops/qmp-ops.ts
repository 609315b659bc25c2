/**
 * QMP on a running VM, behind the QMP policy: raw commands (`qmp`) and the helpers built on
 * them (`sendKeys`, `typeText`, `screendump`, `deviceAdd`, `deviceDel`).
 *
 * Every call is decided first (src/actors/qmp-policy.ts): the name, the global rules and the tier
 * before the VM is even looked up, then the VM's own `qmp:` rules. A refusal is appended as
 * `qmp.command-rejected` to the `qmp-rejections` stream and thrown as `QMP_REFUSED` (exit 4); it
 * never reaches the VM's actor or QEMU. An allowed command runs on the VM's actor, which records
 * `qmp.command-executed` with the tier and the rule (and `vm.tainted` for a dangerous one).
 *
 * @example
 * ```ts
 * await qmpOps(ctx).qmp("web", "query-status");
 * await qmpOps(ctx).sendKeys("web", ["ctrl", "alt", "delete"]);
 * await qmpOps(ctx).qmp("web", "human-monitor-command", { "command-line": "info mtree" }, { allowDangerous: true });
 * ```
 */

import { parseKeyChord, textToChords } from "../../actors/qmp-keys.ts";
import { decideQmp, type QmpDecision, qmpRefusedError } from "../../actors/qmp-policy.ts";
import { resolveOutputFile } from "../../adapters/output-file.ts";
import { isMaqetError, MaqetError } from "../../errors/maqet-error.ts";
import { QMP_REJECTIONS_STREAM, qmpEvent } from "../../events/qmp-events.ts";
import type { MaqetContext } from "../maqet-context.ts";
import { countQmp } from "../qmp-metrics.ts";

export interface QmpOptions {
  /** How long to wait for each reply. Default 30 s. */
  timeoutMs?: number;
  /** Let a dangerous command (`human-monitor-command`, `inject-nmi`) run; the VM is marked tainted. */
  allowDangerous?: boolean;
}

export interface KeyOptions extends QmpOptions {
  /** How long QEMU holds the keys down (send-key `hold-time`). Default: QEMU's, 100 ms. */
  holdTimeMs?: number;
}

export interface ScreendumpOptions extends QmpOptions {
  /** Default: `png` when the file name ends in `.png`, else `ppm`. PNG needs QEMU 7.1 or later. */
  format?: "ppm" | "png";
}

export interface QmpOps {
  /** Runs one QMP command (after the policy check) and returns QEMU's `return` value. */
  qmp<T = unknown>(name: string, command: string, args?: Record<string, unknown>, options?: QmpOptions): Promise<T>;
  /** Presses the keys together (one `send-key`): qcodes such as `ctrl`, `alt`, `delete`, or `ctrl-alt-delete`. */
  sendKeys(name: string, keys: readonly string[], options?: KeyOptions): Promise<{ vm: string; keys: string[] }>;
  /** Types text, one `send-key` per character (US layout, shift handled); other characters are refused up front. */
  typeText(name: string, text: string, options?: KeyOptions): Promise<{ vm: string; characters: number }>;
  /** Saves the VM's display to a host file (PPM or PNG); needs a display device. */
  screendump(
    name: string,
    file: string,
    options?: ScreendumpOptions,
  ): Promise<{ vm: string; file: string; format: string }>;
  /** Hot-plugs a device (`device_add driver=… id=… props…`). */
  deviceAdd(
    name: string,
    driver: string,
    id: string,
    props?: Record<string, unknown>,
    options?: QmpOptions,
  ): Promise<{ vm: string; driver: string; id: string }>;
  /** Asks QEMU to unplug a device (`device_del`); PCI removal completes when the guest agrees. */
  deviceDel(name: string, id: string, options?: QmpOptions): Promise<{ vm: string; id: string }>;
}

/** QEMU's id rule for devices: a letter, then letters, digits, `-`, `.`, `_`. */
const DEVICE_ID_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;
const DRIVER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.,-]{0,127}$/;

export function qmpOps(ctx: MaqetContext): QmpOps {
  const run = <T>(
    name: string,
    command: string,
    calls: ReadonlyArray<Record<string, unknown> | undefined>,
    options: QmpOptions,
    describe?: (error: unknown) => unknown,
  ): Promise<T[]> => runGuarded<T>(ctx, name, command, calls, options, describe);
  return {
    qmp: async (name, command, args, options = {}) => (await run(name, command, [args], options))[0] as never,

    sendKeys: async (name, keys, options = {}) => {
      const chord = parseKeyChord(keys);
      await run(name, "send-key", [sendKeyArgs(chord, options.holdTimeMs)], options);
      return { vm: name, keys: chord.map((k) => String(k.data)) };
    },

    typeText: async (name, text, options = {}) => {
      const chords = textToChords(text);
      const calls = chords.map((keys) =>
        sendKeyArgs(
          keys.map((data) => ({ type: "qcode" as const, data })),
          options.holdTimeMs,
        ),
      );
      await run(name, "send-key", calls, options);
      return { vm: name, characters: chords.length };
    },

    screendump: async (name, file, options = {}) => {
      const path = await resolveOutputFile(file);
      const format = options.format ?? (path.toLowerCase().endsWith(".png") ? "png" : "ppm");
      if (format !== "png" && format !== "ppm") {
        throw new MaqetError("INVALID_ARGUMENT", `Unknown screendump format '${String(format)}': use ppm or png.`);
      }
      // `format` exists since QEMU 7.1; PPM is the default, so it is only sent for PNG.
      const args = format === "png" ? { filename: path, format } : { filename: path };
      await run(name, "screendump", [args], options, (error) => noDisplay(error, name, format));
      return { vm: name, file: path, format };
    },

    deviceAdd: async (name, driver, id, props = {}, options = {}) => {
      if (!DRIVER_PATTERN.test(driver)) {
        throw new MaqetError("INVALID_ARGUMENT", `Invalid device driver '${driver}': e.g. usb-kbd, virtio-net-pci.`);
      }
      assertDeviceId(id);
      for (const key of ["driver", "id"]) {
        if (Object.hasOwn(props, key)) {
          throw new MaqetError("INVALID_ARGUMENT", `Give '${key}' as its own argument, not as a property.`);
        }
      }
      await run(name, "device_add", [{ driver, id, ...props }], options);
      return { vm: name, driver, id };
    },

    deviceDel: async (name, id, options = {}) => {
      assertDeviceId(id);
      await run(name, "device_del", [{ id }], options);
      return { vm: name, id };
    },
  };
}

function sendKeyArgs(keys: unknown[], holdTimeMs: number | undefined): Record<string, unknown> {
  if (holdTimeMs !== undefined && (!Number.isInteger(holdTimeMs) || holdTimeMs < 0)) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid hold time ${String(holdTimeMs)}: a whole number of milliseconds.`,
    );
  }
  return holdTimeMs === undefined ? { keys } : { keys, "hold-time": holdTimeMs };
}

function assertDeviceId(id: string): void {
  if (!DEVICE_ID_PATTERN.test(id)) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid device id '${id}': a letter, then letters, digits, '-', '.' or '_' (QEMU's id rule).`,
    );
  }
}

/** QEMU 7.2's answer when the VM has no console at all (e.g. `-nodefaults` without a display device). */
function noDisplay(error: unknown, name: string, format: string): unknown {
  if (!isMaqetError(error, "QMP_ERROR")) return error;
  const desc = String(error.details.desc ?? "");
  if (/no (console|QemuConsole)/i.test(desc)) {
    return new MaqetError(
      "QMP_ERROR",
      `Cannot take a screendump of VM '${name}': it has no display device (QEMU: ${desc}). Add one to its config, e.g. args: [-device, VGA], and restart it.`,
      { cause: error, details: { ...error.details, reason: "no-display" } },
    );
  }
  if (format === "png" && /format/i.test(desc) && /(unexpected|invalid|parameter)/i.test(desc)) {
    return new MaqetError(
      "QMP_ERROR",
      `This QEMU cannot write PNG screendumps (QEMU: ${desc}); it needs QEMU 7.1 or later. Use a .ppm file instead.`,
      { cause: error, details: error.details },
    );
  }
  return error;
}

/**
 * The policy, then the VM, then each call on the VM's actor, in one operation (one correlation
 * id). `calls` are the argument objects of successive runs of the same command (`typeText`).
 */
async function runGuarded<T>(
  ctx: MaqetContext,
  name: string,
  command: string,
  calls: ReadonlyArray<Record<string, unknown> | undefined>,
  options: QmpOptions,
  describe: (error: unknown) => unknown = (e) => e,
): Promise<T[]> {
  const configured = ctx.options.qmpPolicy;
  const global = typeof configured === "function" ? await configured() : configured;
  const policy = { allowDangerous: options.allowDangerous === true, global };
  // Before the VM is looked up, before the store is opened: a malformed name throws here.
  const early = decideQmp(command, policy);
  const argumentNames = [...new Set(calls.flatMap((args) => Object.keys(args ?? {})))];
  return ctx.operation(async (rt, orchestrator) => {
    const refuse = async (decision: QmpDecision, vmId?: string): Promise<never> => {
      countQmp(ctx, { command, tier: decision.tier, outcome: "refused" });
      const event = qmpEvent("qmp.command-rejected", {
        command,
        tier: decision.tier,
        rule: decision.rule,
        vm: name,
        ...(vmId ? { vmId } : {}),
        argumentNames,
      });
      const refused = qmpRefusedError(decision, name);
      try {
        await rt.store.append(QMP_REJECTIONS_STREAM, [{ ...event, metadata: orchestrator.metadata }], {
          expectedVersion: "any",
        });
      } catch (error) {
        // Still refused: failing to record a refusal must never turn it into a yes.
        throw new MaqetError(
          "QMP_REFUSED",
          `${refused.message} (Recording the refusal failed too: ${String(error)}.)`,
          {
            cause: error,
            details: refused.details,
          },
        );
      }
      throw refused;
    };
    if (!early.allowed) return refuse(early);
    // A VM whose actor this process holds is known without a read: a warm call costs the round
    // trip and the one append of its qmp.command-executed (docs/benchmarks.md, issue 15).
    const loaded = orchestrator.loadedActor(name);
    const view = loaded?.view ?? (await orchestrator.find(name));
    const decision =
      view.config.qmp === undefined ? early : decideQmp(command, { ...policy, vm: view.config.qmp, vmName: view.name });
    if (!decision.allowed) return refuse(decision, view.vmId);
    const vm = loaded ?? (await orchestrator.actor(view.vmId));
    const results: T[] = [];
    for (const args of calls) {
      try {
        results.push(await vm.qmp<T>(command, args, { timeoutMs: options.timeoutMs, decision }));
        countQmp(ctx, { command, tier: decision.tier, outcome: "ok" });
      } catch (error) {
        if (isMaqetError(error, "QMP_ERROR") || isMaqetError(error, "QMP_TIMEOUT")) {
          countQmp(ctx, { command, tier: decision.tier, outcome: "error" });
        }
        throw describe(error);
      }
    }
    return results;
  });
}
