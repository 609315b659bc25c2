/**
 * The global config (`$XDG_CONFIG_HOME/maqet/config.yaml`): settings that apply to every VM.
 * Today one section, `qmp:` (the same allow/deny rules a VM config takes). Pure: the CLI reads
 * the file (src/adapters/load-global-config.ts); a program passes `qmpPolicy` instead.
 *
 * Strict like the VM config: an unknown key is an error, so a misspelt policy never silently
 * allows everything.
 *
 * @example
 * ```ts
 * parseGlobalConfig("qmp:\n  deny: [quit]\n", { source: "config.yaml" }).qmp; // { deny: ["quit"] }
 * ```
 */
import { parseDocument } from "yaml";
import { MaqetError } from "../errors/maqet-error.ts";
import { parseQmpRules, type QmpRules } from "./qmp-rules.ts";

export interface GlobalConfig {
  qmp?: QmpRules;
}

export const GLOBAL_CONFIG_KEYS = ["qmp"] as const;

/**
 * Parses and validates the global config text; throws `CONFIG_INVALID`.
 *
 * @example
 * ```ts
 * parseGlobalConfig("", { source: "config.yaml" }); // {}
 * ```
 */
export function parseGlobalConfig(text: string, options: { source: string }): GlobalConfig {
  const doc = parseDocument(text.replace(/^\uFEFF/, ""), {
    version: "1.2",
    schema: "core",
    uniqueKeys: true,
    prettyErrors: false,
  });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem !== undefined) {
    throw new MaqetError(
      "CONFIG_INVALID",
      `Invalid YAML in ${options.source}: ${problem.message}. Fix the YAML syntax (maqet reads plain YAML 1.2).`,
      { details: { source: options.source } },
    );
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new MaqetError(
      "CONFIG_INVALID",
      `Invalid config: ${options.source} must be a mapping (key: value lines), e.g. "qmp:\\n  deny: [quit]".`,
      { details: { keyPath: "", source: options.source } },
    );
  }
  const raw = value as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!(GLOBAL_CONFIG_KEYS as readonly string[]).includes(key)) {
      throw new MaqetError(
        "CONFIG_INVALID",
        `Invalid config: unknown key '${key}' in ${options.source}. Valid keys: ${GLOBAL_CONFIG_KEYS.join(", ")}. Remove or rename it.`,
        { details: { keyPath: key, source: options.source } },
      );
    }
  }
  const qmp = parseQmpRules(raw.qmp, { keyPath: "qmp", source: options.source });
  return qmp === undefined ? {} : { qmp };
}
