/**
 * Text output of `audit` (a table, or JSON lines with `--format jsonl`), `audit verify` and
 * `stats`.
 *
 * @example
 * ```ts
 * AUDIT_RENDERERS.audit(await maqet.audit({ vm: "web" }));
 * ```
 */
import type { AuditEntry, AuditVerification } from "../../api/ops/audit-ops.ts";
import type { MaqetStats } from "../../api/ops/stats-ops.ts";
import { renderTable } from "../table.ts";
import type { Renderer } from "./renderer.ts";

export const AUDIT_RENDERERS: Record<string, Renderer> = {
  audit: (result) => {
    const entries = result as AuditEntry[] & { format?: string };
    if (entries.format === "jsonl") return entries.map((e) => JSON.stringify(e)).join("\n");
    if (entries.format === "json") return JSON.stringify(entries, null, 2);
    if (entries.length === 0) return "No audit entries.";
    return renderTable(
      ["SEQ", "TIME", "VM", "OPERATION", "OUTCOME", "TIER", "DETAIL", "PARAMETERS", "BY"],
      entries.map((e) => [
        String(e.seq),
        e.at.replace("T", " ").replace("Z", ""),
        e.vm ?? "-",
        e.operation,
        e.outcome,
        e.tier ?? "-",
        [e.detail, e.rule && e.outcome === "refused" ? `rule ${e.rule}` : null].filter(Boolean).join(", ") || "-",
        e.parameters.join(",") || "-",
        e.user ? `${e.user}@${e.host} pid ${e.pid}${e.source ? ` (${e.source})` : ""}` : "-",
      ]),
    );
  },
  "audit verify": (result) => {
    const r = result as AuditVerification;
    return r.entries === 0
      ? "The audit trail is empty."
      : `Audit trail intact: ${r.entries} entries${r.checkedAgainstEvents ? ", each matching its event" : ""}. Head hash: ${r.head}`;
  },
  stats: (result) => {
    const s = result as MaqetStats;
    const lines = [`QMP commands (store, all processes): ${s.qmp.total}`];
    if (s.qmp.commands.length) {
      lines.push(
        renderTable(
          ["COMMAND", "TIER", "OUTCOME", "COUNT"],
          s.qmp.commands.map((c) => [c.command, c.tier, c.outcome, String(c.count)]),
        ),
      );
    }
    const b = s.process.binaryCache;
    lines.push("", `Binary cache (this process, pid ${s.process.pid}): ${b.lookups} lookups, ${b.hits} hits`);
    return lines.join("\n");
  },
};
