/**
 * Console commands: the VM's serial console as maqet captured it, and (`-i`) attached live.
 *
 * @example
 * ```ts
 * CONSOLE_COMMANDS.map((c) => c.name); // ["console"]
 * ```
 */
import { MaqetError } from "../../errors/maqet-error.ts";
import { attachedConsole } from "./attached-console.ts";
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
    summary:
      "Print a VM's serial console log (--follow: as it comes); -i attaches to it interactively (Ctrl-] detaches)",
    positionals: [{ name: "vm", description: "VM name or id" }],
    options: [
      {
        name: "follow",
        type: "boolean",
        description: "then print new output as it comes, until QEMU exits or Ctrl-C (the store is not held)",
      },
      {
        name: "interactive",
        type: "boolean",
        description:
          "attach the terminal to the running VM's serial port (raw mode; Ctrl-] detaches, the VM keeps running). One writer at a time",
      },
      {
        name: "read-only",
        type: "boolean",
        description: "with -i: watch without the writer seat (any number may; typing is not sent)",
      },
      {
        name: "force",
        type: "boolean",
        description: "with -i: take the writer seat from whoever holds it (they are detached)",
      },
    ],
    examples: [
      "maqet console web",
      "maqet console web --follow",
      "maqet console web -i",
      "maqet console web -i --force",
      "maqet console web -i --read-only",
      "maqet console web --json",
    ],
    invoke: async (m, i): Promise<unknown> => {
      if (i.interactive === true) {
        if (i.follow === true) {
          throw new MaqetError(
            "INVALID_ARGUMENT",
            "console: choose --follow (print the log) or -i (attach), not both.",
          );
        }
        const options = { force: i.force === true, readOnly: i["read-only"] === true, recordDetach: false };
        return attachedConsole(await m.attachConsole(text(i, "vm"), options));
      }
      if (i.force === true || i["read-only"] === true) {
        throw new MaqetError("INVALID_ARGUMENT", "console: --force and --read-only go with -i (--interactive).");
      }
      const serial = await m.console(text(i, "vm"));
      if (i.follow === true) return streamedResult(serial.follow$(), { vm: serial.vm, path: serial.path });
      const result: ConsoleText = { vm: serial.vm, path: serial.path, state: serial.state, text: await serial.read() };
      return result;
    },
  },
];
