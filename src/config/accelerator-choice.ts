/**
 * Which accelerator a config chooses on QEMU's own command line, so maqet never adds a
 * conflicting `-accel` (QEMU refuses `-accel` together with `-machine accel=`, and `-enable-kvm`
 * is `-machine accel=kvm`). MAQET's docs recommend `- enable-kvm`; `machine: q35,accel=kvm` is
 * common too. Rules (docs/config.md, "Accelerator"):
 *
 * - `enable-kvm` (arguments or args), `-accel X` / `-accel accel=X`, `-machine …,accel=X` / `-M`,
 *   and `machine: …,accel=X` choose the accelerator: maqet adds no `-accel`;
 * - `accel: kvm|tcg` written in the config must agree with that choice (a fallback list such as
 *   `accel=kvm:tcg` agrees with its first entry); a contradiction is `CONFIG_INVALID` (exit 3);
 * - otherwise maqet adds `-accel` from `accel:` (`auto`: kvm when usable, else tcg).
 *
 * @example
 * ```ts
 * chosenAccelerator({ accel: "auto", args: [], storage: [], arguments: ["enable-kvm"] });
 * // { accel: "kvm", source: "enable-kvm in arguments" }
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";
import { renderArguments } from "./render-arguments.ts";
import type { VmConfig } from "./vm-config.ts";

export interface AcceleratorChoice {
  /** What the words ask for: `kvm`, `tcg`, or a fallback list like `kvm:tcg`. */
  accel: string;
  /** Where, for messages: `enable-kvm in arguments`, `machine: q35,accel=kvm`, `-accel tcg in args`. */
  source: string;
}

/**
 * The accelerator the config's QEMU words choose (the first one found), or undefined when they
 * leave it to maqet.
 *
 * @example
 * ```ts
 * chosenAccelerator({ accel: "auto", args: [], storage: [], arguments: [], machine: "q35,accel=tcg" })?.accel; // "tcg"
 * ```
 */
export function chosenAccelerator(
  config: Pick<VmConfig, "arguments" | "args" | "machine">,
): AcceleratorChoice | undefined {
  const fromMachine = config.machine === undefined ? undefined : machineAccel(config.machine);
  if (fromMachine !== undefined) return { accel: fromMachine, source: `machine: ${config.machine}` };
  const where: [string, string[]][] = [
    ["arguments", renderArguments(config.arguments)],
    ["args", config.args],
  ];
  for (const [place, words] of where) {
    for (const [i, word] of words.entries()) {
      const option = word.replace(/^--?/, "-");
      if (!word.startsWith("-")) continue;
      if (option === "-enable-kvm") return { accel: "kvm", source: `enable-kvm in ${place}` };
      const value = words[i + 1];
      if (value === undefined) continue;
      if (option === "-accel") {
        const accel = optionValue(value, "accel", true);
        if (accel !== undefined) return { accel, source: `-accel ${value} in ${place}` };
      }
      if (option === "-machine" || option === "-M") {
        const accel = machineAccel(value);
        if (accel !== undefined) return { accel, source: `${option} ${value} in ${place}` };
      }
    }
  }
  return undefined;
}

/**
 * Throws `CONFIG_INVALID` when `accel:` is written as kvm or tcg and the QEMU words choose another.
 *
 * @example
 * ```ts
 * checkAcceleratorChoice({ accel: "tcg", args: [], storage: [], arguments: ["enable-kvm"] }, "web.yaml");
 * // throws: Invalid config: 'accel: tcg' contradicts enable-kvm in arguments (kvm) in web.yaml. …
 * ```
 */
export function checkAcceleratorChoice(config: VmConfig, source: string): AcceleratorChoice | undefined {
  const choice = chosenAccelerator(config);
  if (choice === undefined || config.accel === "auto") return choice;
  const first = choice.accel.split(":")[0];
  if (first !== config.accel) {
    throw new MaqetError(
      "CONFIG_INVALID",
      `Invalid config: 'accel: ${config.accel}' contradicts ${choice.source} (${choice.accel}) in ${source}. Keep one of them: remove accel:, or change the QEMU option to the accelerator you want.`,
      { details: { keyPath: "accel", source, accel: config.accel, chosen: choice.accel, chosenBy: choice.source } },
    );
  }
  return choice;
}

/** `accel=` in a `-machine` value (`q35,accel=kvm`). */
function machineAccel(value: string): string | undefined {
  return optionValue(value, "accel", false);
}

/** A key's value in a QEMU option string; `implied` when the first bare part is that key. */
function optionValue(value: string, key: string, implied: boolean): string | undefined {
  const parts = value.split(",");
  for (const [i, part] of parts.entries()) {
    const eq = part.indexOf("=");
    if (eq < 0) {
      if (i === 0 && implied && part !== "") return part;
      continue;
    }
    if (part.slice(0, eq) === key) return part.slice(eq + 1);
  }
  return undefined;
}
