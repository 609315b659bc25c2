/**
 * `maqet doctor`: binaries, accelerator, store, runtime directory, stale sockets.
 *
 * @example
 * ```ts
 * const report = await findCommand("doctor")!.invoke(maqet, {});
 * ```
 */
import type { DoctorReport } from "../ops/doctor-ops.ts";
import type { CommandSpec } from "./command-spec.ts";

export const DOCTOR_COMMANDS: readonly CommandSpec[] = [
  {
    name: "doctor",
    summary: "Check this host: QEMU binaries, KVM, the store, the runtime directory, stale sockets",
    positionals: [],
    options: [
      { name: "skip-kvm", type: "boolean", description: "do not start QEMU to test KVM" },
      { name: "strict", type: "boolean", description: "exit 1 when a check fails (for scripts and CI)" },
    ],
    examples: ["maqet doctor", "maqet doctor --json", "maqet doctor --strict --skip-kvm"],
    invoke: (m, i) => m.doctor({ skipKvm: i["skip-kvm"] === true }),
    exitCode: (i, result) => (i.strict === true && !(result as DoctorReport).ok ? 1 : 0),
  },
];
