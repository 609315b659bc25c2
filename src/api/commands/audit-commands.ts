/**
 * Audit and stats commands: `audit` (the trail, as a table, JSON or JSON lines), `audit verify`
 * (the hash chain, exit 1 on a broken link), `stats` (QMP and binary-cache counters).
 *
 * @example
 * ```ts
 * AUDIT_COMMANDS.map((c) => c.name); // ["audit", "audit verify", "stats"]
 * ```
 */
import { MaqetError } from "../../errors/maqet-error.ts";
import type { CommandSpec } from "./command-spec.ts";
import { parseTimeArg } from "./time-arg.ts";

const FORMATS = ["table", "json", "jsonl"] as const;

export const AUDIT_COMMANDS: readonly CommandSpec[] = [
  {
    name: "audit",
    summary: "Print the audit trail: who did what to which VM, when, with which outcome",
    positionals: [],
    options: [
      { name: "vm", type: "string", value: "NAME", description: "only this VM (name or id)" },
      { name: "since", type: "string", value: "TIME", description: "from TIME (ISO 8601, or 15m / 2h / 7d ago)" },
      { name: "until", type: "string", value: "TIME", description: "up to TIME" },
      {
        name: "format",
        type: "string",
        value: "FORMAT",
        description: "table (default), json, or jsonl (one JSON object a line, for log shippers)",
      },
    ],
    examples: [
      "maqet audit",
      "maqet audit --vm web --since 2h",
      "maqet audit --since 2026-11-22 --format jsonl >> /var/log/maqet-audit.jsonl",
      "maqet audit --json",
    ],
    invoke: async (m, i) => {
      const format = (i.format === undefined ? "table" : String(i.format)) as (typeof FORMATS)[number];
      if (!FORMATS.includes(format)) {
        throw new MaqetError("INVALID_ARGUMENT", `Unknown --format '${format}': use table, json or jsonl.`);
      }
      const entries = await m.audit({
        vm: i.vm === undefined ? undefined : String(i.vm),
        since: parseTimeArg(i.since, "--since"),
        until: parseTimeArg(i.until, "--until"),
      });
      // The format rides along unseen by JSON.stringify: `--json` still prints the plain array.
      Object.defineProperty(entries, "format", { value: format, enumerable: false });
      return entries;
    },
  },
  {
    name: "audit verify",
    summary: "Check the audit trail's hash chain and each entry against its event (exit 1 on a broken link)",
    positionals: [],
    options: [],
    examples: ["maqet audit verify", "maqet audit verify --json"],
    invoke: async (m) => {
      const report = await m.auditVerify();
      if (!report.ok) {
        throw new MaqetError(
          "AUDIT_TAMPERED",
          `Audit trail broken at entry ${report.broken?.seq}: ${report.broken?.message} ${report.entries} entries before it are intact.`,
          { details: { ...report } },
        );
      }
      return report;
    },
  },
  {
    name: "stats",
    summary: "Print counters: QMP commands by name, tier and outcome; binary lookups and cache hits",
    positionals: [],
    options: [],
    examples: ["maqet stats", "maqet stats --json"],
    invoke: (m) => m.stats(),
  },
];
