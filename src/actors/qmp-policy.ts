/**
 * The QMP policy: may this command run, and which rule says so. Pure: the caller supplies the
 * rules (global config, the VM's config) and records the decision.
 *
 * Order of the checks (the first that refuses wins):
 * 1. the name must match `^[a-z][a-z0-9_-]*$` (a malformed name is invalid input, not a decision);
 * 2. global `deny`, 3. global `allow` (when present, the command must match an entry),
 * 4. the tier: `dangerous` needs `allowDangerous`;
 * 5. the VM's `deny`, 6. the VM's `allow`.
 * Steps 1-4 need no VM, so they run before the VM is looked up; 5-6 need the VM's config.
 *
 * @example
 * ```ts
 * decideQmp("inject-nmi", {}); // { allowed: false, tier: "dangerous", rule: "tier:dangerous", … }
 * decideQmp("query-status", { global: { allow: ["query-*"] } }); // { allowed: true, rule: "global:allow:query-*", … }
 * ```
 */
import { matchQmpRule, QMP_COMMAND_PATTERN, type QmpRules } from "../config/qmp-rules.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import { type QmpTier, qmpTierOf } from "../events/qmp-events.ts";

export { QMP_COMMAND_PATTERN } from "../config/qmp-rules.ts";

/**
 * Commands whose argument values are stored in `qmp.command-executed` (`arguments`): their
 * arguments are paths, ids and sizes, never secrets. Every other command stores names only.
 * `send-key` is deliberately absent: `qmp type` may be typing a password.
 */
export const QMP_VALUE_SAFE_COMMANDS: readonly string[] = [
  "screendump",
  "device_del",
  "blockdev-del",
  "pmemsave",
  "memsave",
];

export interface QmpPolicyInput {
  /** Let a `dangerous` command run (the VM is then marked tainted). */
  allowDangerous?: boolean;
  /** Rules from the global config (`$XDG_CONFIG_HOME/maqet/config.yaml` or `qmpPolicy`). */
  global?: QmpRules;
  /** Rules from the VM's config; leave out to decide before the VM is looked up. */
  vm?: QmpRules;
  /** The VM's name, for messages. */
  vmName?: string;
}

export interface QmpDecision {
  command: string;
  tier: QmpTier;
  allowed: boolean;
  /**
   * The rule that decided: `tier:<tier>` (default policy), `tier:dangerous` (refused),
   * `allow-dangerous` (a dangerous command let through), `global:allow:<entry>`,
   * `global:deny:<entry>`, `global:allow` (no entry matched), `vm:…` likewise.
   */
  rule: string;
  /** True when running it marks the VM tainted (an allowed dangerous command). */
  taint: boolean;
  /** Why it was refused and how to change that (refusals only). */
  reason?: string;
}

/**
 * Decides one command. Throws `INVALID_ARGUMENT` for a malformed name.
 *
 * @example
 * ```ts
 * const d = decideQmp("quit", { vm: { deny: ["@privileged"] }, vmName: "web" });
 * d.rule; // "vm:deny:@privileged"
 * ```
 */
export function decideQmp(command: string, input: QmpPolicyInput = {}): QmpDecision {
  assertQmpCommandName(command);
  const tier = qmpTierOf(command);
  const refuse = (rule: string, reason: string): QmpDecision => ({
    command,
    tier,
    allowed: false,
    rule,
    taint: false,
    reason,
  });
  const vmLabel = `VM '${input.vmName ?? "?"}''s config (qmp: section)`;
  const globalLabel = "the global config (qmp: section of $XDG_CONFIG_HOME/maqet/config.yaml, or the qmpPolicy option)";
  let allowedBy: string | undefined;

  const global = checkRules("global", globalLabel, input.global, command, tier);
  if (global.refusal) return refuse(global.refusal.rule, global.refusal.reason);
  allowedBy = global.allowedBy;

  if (tier === "dangerous" && input.allowDangerous !== true) {
    return refuse(
      "tier:dangerous",
      `QMP command '${command}' refused: it is in the dangerous tier (it bypasses maqet's model of the VM). ` +
        "Add --allow-dangerous (library: { allowDangerous: true }) to run it; the VM is then marked tainted. See docs/security.md.",
    );
  }

  const vm = checkRules("vm", vmLabel, input.vm, command, tier);
  if (vm.refusal) return refuse(vm.refusal.rule, vm.refusal.reason);
  allowedBy = vm.allowedBy ?? allowedBy;

  const rule = tier === "dangerous" ? "allow-dangerous" : (allowedBy ?? `tier:${tier}`);
  return { command, tier, allowed: true, rule, taint: tier === "dangerous" };
}

/** Throws `INVALID_ARGUMENT` unless the name matches {@link QMP_COMMAND_PATTERN}. */
export function assertQmpCommandName(command: string): void {
  if (!QMP_COMMAND_PATTERN.test(command)) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid QMP command name '${command}': it must match ${QMP_COMMAND_PATTERN} (e.g. query-status).`,
      { details: { command } },
    );
  }
}

/** The error a refusal is reported with (exit 4). */
export function qmpRefusedError(decision: QmpDecision, vm: string): MaqetError {
  return new MaqetError("QMP_REFUSED", decision.reason ?? `QMP command '${decision.command}' refused.`, {
    details: { command: decision.command, tier: decision.tier, rule: decision.rule, vm },
  });
}

function checkRules(
  scope: "global" | "vm",
  label: string,
  rules: QmpRules | undefined,
  command: string,
  tier: QmpTier,
): { refusal?: { rule: string; reason: string }; allowedBy?: string } {
  if (rules === undefined) return {};
  const denied = matchQmpRule(rules.deny ?? [], command, tier);
  if (denied !== undefined) {
    return {
      refusal: {
        rule: `${scope}:deny:${denied}`,
        reason: `QMP command '${command}' refused by the deny entry '${denied}' in ${label}. Remove the entry there to allow it.`,
      },
    };
  }
  if (rules.allow === undefined) return {};
  const allowed = matchQmpRule(rules.allow, command, tier);
  if (allowed === undefined) {
    const list = rules.allow.length ? rules.allow.join(", ") : "nothing";
    return {
      refusal: {
        rule: `${scope}:allow`,
        reason: `QMP command '${command}' (tier ${tier}) refused: it matches no allow entry in ${label} (allowed: ${list}). Add it to the allow list there to run it.`,
      },
    };
  }
  return { allowedBy: `${scope}:allow:${allowed}` };
}
