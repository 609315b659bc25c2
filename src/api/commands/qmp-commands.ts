/**
 * QMP commands: raw QMP on a running VM.
 *
 * @example
 * ```ts
 * QMP_COMMANDS.map((c) => c.name);
 * ```
 */
import { type CommandSpec, parseJsonObject, positiveSeconds, TIMEOUT, text } from "./command-spec.ts";

export const QMP_COMMANDS: readonly CommandSpec[] = [
  {
    name: "qmp",
    summary: "Run a QMP command on a running VM and print its answer as JSON",
    positionals: [
      { name: "vm", description: "VM name or id" },
      { name: "command", description: "QMP command, e.g. query-status" },
    ],
    options: [
      { name: "args", type: "string", value: "JSON", description: "arguments as a JSON object" },
      { ...TIMEOUT, description: "how long to wait for the answer (default 30)" },
    ],
    examples: ["maqet qmp web query-status", `maqet qmp web screendump --args '{"filename": "/tmp/web.ppm"}'`],
    invoke: (m, i) =>
      m.qmp(text(i, "vm"), text(i, "command"), parseJsonObject(i.args), {
        timeoutMs: positiveSeconds(i.timeout, "qmp"),
      }),
  },
];
