/**
 * Text output of `maqet doctor`: one line per check (ok, warn, FAIL), then what to do.
 *
 * @example
 * ```ts
 * DOCTOR_RENDERERS.doctor(await maqet.doctor());
 * ```
 */
import type { DoctorReport } from "../../api/ops/doctor-ops.ts";
import type { Renderer } from "./renderer.ts";

const MARK = { ok: "ok  ", warn: "warn", fail: "FAIL" } as const;

export const DOCTOR_RENDERERS: Record<string, Renderer> = {
  doctor: (result) => {
    const r = result as DoctorReport;
    const width = Math.max(...r.checks.map((c) => c.name.length));
    const lines = r.checks.map((c) => `${MARK[c.status]}  ${c.name.padEnd(width)}  ${c.summary}`);
    const fixes = r.checks.filter((c) => c.status !== "ok" && c.fix).map((c) => `  ${c.name}: ${c.fix}`);
    if (fixes.length) lines.push("", "To do:", ...fixes);
    const { auto, recommended } = r.accelerator;
    lines.push(
      "",
      `accel: auto picks ${auto} on this host${auto === "kvm" ? " (/dev/kvm is read-write)" : " (/dev/kvm is not usable)"}.`,
    );
    if (recommended !== auto) {
      lines.push(
        `Recommended for kernel guests: ${recommended}${recommended === "tcg" ? " (write accel: tcg in the config; see the kvm checks above)" : ""}.`,
      );
    }
    lines.push(r.ok ? "No failures." : `${r.checks.filter((c) => c.status === "fail").length} check(s) failed.`);
    return lines.join("\n");
  },
};
