/**
 * Text output of `console`: the log itself, as the guest wrote it (serial lines end in `\r\n`).
 *
 * @example
 * ```ts
 * CONSOLE_RENDERERS.console({ vm: "web", path: "/run/…/serial.log", state: "running", text: "login: " });
 * ```
 */
import type { ConsoleText } from "../../api/commands/console-commands.ts";
import type { Renderer } from "./renderer.ts";

export const CONSOLE_RENDERERS: Record<string, Renderer> = {
  // The CLI ends what a renderer returns with a newline: drop the log's own last one.
  console: (result) => (result as ConsoleText).text.replace(/\n$/, ""),
};
