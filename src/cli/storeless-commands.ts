/**
 * CLI commands that need no store, so they never open one: `completion SHELL` and `schema`.
 *
 * @example
 * ```ts
 * runStorelessCommand("schema", {}); // the VM config's JSON Schema, as text
 * runStorelessCommand("ls", {});     // undefined: not one of these
 * ```
 */
import type { CommandInput } from "../api/commands.ts";
import { vmConfigSchema } from "../api/vm-config-schema.ts";
import { completionScript } from "./completion.ts";

/** The text to print, or undefined when the command is not a storeless one. */
export function runStorelessCommand(name: string, input: CommandInput): string | undefined {
  if (name === "completion") return completionScript(String(input.shell)).replace(/\n$/, "");
  if (name === "schema") return JSON.stringify(vmConfigSchema(), null, 2);
  return undefined;
}
