/**
 * Console commands: the VM's serial console as maqet captured it.
 *
 * @example
 * ```ts
 * CONSOLE_COMMANDS.map((c) => c.name); // ["console"]
 * ```
 */
import { type CommandSpec, text } from "./command-spec.ts";
import { streamedResult } from "./streamed-result.ts";

/** What `console` returns without `--follow`. */
export interface ConsoleText {
  vm: string;
  path: string;
  state: string;
  text: string;
}

export const CONSOLE_COMMANDS: readonly CommandSpec[] = [
  {
    name: "console",
    summary: "Print a VM's serial console log; --follow keeps printing until the VM stops",
    positionals: [{ name: "vm", description: "VM name or id" }],
    options: [
      {
        name: "follow",
        type: "boolean",
        description: "then print new output as it comes, until QEMU exits or Ctrl-C (the store is not held)",
      },
    ],
    examples: ["maqet console web", "maqet console web --follow", "maqet console web --json"],
    invoke: async (m, i): Promise<unknown> => {
      const serial = await m.console(text(i, "vm"));
      if (i.follow === true) return streamedResult(serial.follow$(), { vm: serial.vm, path: serial.path });
      const result: ConsoleText = { vm: serial.vm, path: serial.path, state: serial.state, text: await serial.read() };
      return result;
    },
  },
];
