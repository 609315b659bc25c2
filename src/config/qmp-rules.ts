/**
 * The `qmp:` policy section a VM config and the global config share: which QMP commands may run.
 * Pure validation (no I/O); the decision itself is `decideQmp` in src/actors/qmp-policy.ts.
 *
 * ```yaml
 * qmp:
 *   allow: [query-*, send-key, screendump, "@privileged"]
 *   deny: [quit]
 * ```
 *
 * An entry is a command name (`query-status`), a name prefix ending in `*` (`query-*`, or `*`
 * alone for every command), or a tier (`@safe`, `@privileged`, `@memory-dump`, `@dangerous`).
 * Rules only narrow what may run: an `allow` entry never lets a dangerous command through
 * without `--allow-dangerous`.
 *
 * @example
 * ```ts
 * parseQmpRules({ allow: ["query-*"], deny: ["quit"] }, { keyPath: "qmp", source: "web.yaml" });
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";

/**
 * How much a QMP command can do beyond what maqet models:
 * - `dangerous`: an escape hatch (HMP passthrough) or a guest-visible fault; refused unless allowed;
 * - `privileged`: ends, resets or unplugs parts of the machine; allowed and marked;
 * - `memory-dump`: writes guest memory to a host file; allowed and marked;
 * - `safe`: everything else.
 */
export type QmpTier = "safe" | "privileged" | "memory-dump" | "dangerous";

export const QMP_TIER_NAMES: readonly QmpTier[] = ["safe", "privileged", "memory-dump", "dangerous"];

/** QMP command names: lower-case words with `-` or `_`, nothing that could be an option. */
export const QMP_COMMAND_PATTERN = /^[a-z][a-z0-9_-]*$/;

/** A rule entry: a command name, a name prefix with `*`, `*`, or `@tier`. */
const ENTRY_PATTERN = /^(?:[a-z][a-z0-9_-]*\*?|\*|@[a-z-]+)$/;

export interface QmpRules {
  /** When present, only matching commands may run. */
  allow?: string[];
  /** Matching commands never run (checked before `allow`). */
  deny?: string[];
}

/**
 * Validates a `qmp:` section; throws `CONFIG_INVALID` naming the key path.
 *
 * @example
 * ```ts
 * parseQmpRules(undefined, { keyPath: "qmp", source: "x" }); // undefined
 * ```
 */
export function parseQmpRules(value: unknown, at: { keyPath: string; source: string }): QmpRules | undefined {
  if (value === undefined || value === null) return undefined;
  const fail = (keyPath: string, expected: string, got: unknown): never => {
    const shown = JSON.stringify(got) ?? String(got);
    throw new MaqetError(
      "CONFIG_INVALID",
      `Invalid config: '${keyPath}' must be ${expected} (got ${shown.length > 60 ? `${shown.slice(0, 57)}...` : shown}). Fix the value in ${at.source}.`,
      { details: { keyPath, source: at.source, value: got } },
    );
  };
  if (typeof value !== "object" || Array.isArray(value)) {
    fail(at.keyPath, "a mapping with allow: and/or deny: lists of QMP command names", value);
  }
  const raw = value as Record<string, unknown>;
  const rules: QmpRules = {};
  for (const key of Object.keys(raw)) {
    if (key !== "allow" && key !== "deny") {
      throw new MaqetError(
        "CONFIG_INVALID",
        `Invalid config: unknown key '${at.keyPath}.${key}' in ${at.source}. Valid keys: allow, deny. Remove or rename it.`,
        { details: { keyPath: `${at.keyPath}.${key}`, source: at.source } },
      );
    }
    const list = raw[key];
    if (list === null || list === undefined) continue;
    if (!Array.isArray(list)) fail(`${at.keyPath}.${key}`, 'a list such as [query-*, send-key, "@privileged"]', list);
    rules[key] = (list as unknown[]).map((entry, i) => {
      const keyPath = `${at.keyPath}.${key}[${i}]`;
      const expected =
        "a QMP command name, a prefix ending in * (query-*), * or a tier (@safe, @privileged, @memory-dump, @dangerous)";
      if (typeof entry !== "string" || !ENTRY_PATTERN.test(entry)) fail(keyPath, expected, entry);
      const text = entry as string;
      if (text.startsWith("@") && !(QMP_TIER_NAMES as readonly string[]).includes(text.slice(1))) {
        fail(keyPath, expected, entry);
      }
      return text;
    });
  }
  return rules;
}

/**
 * The first entry of `entries` that matches a command of the given tier, or undefined.
 *
 * @example
 * ```ts
 * matchQmpRule(["query-*"], "query-status", "safe"); // "query-*"
 * ```
 */
export function matchQmpRule(entries: readonly string[], command: string, tier: QmpTier): string | undefined {
  return entries.find((entry) => {
    if (entry === "*") return true;
    if (entry.startsWith("@")) return entry.slice(1) === tier;
    if (entry.endsWith("*")) return command.startsWith(entry.slice(0, -1));
    return entry === command;
  });
}
