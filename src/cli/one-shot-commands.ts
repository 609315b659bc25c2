/**
 * Which commands a CLI call may hand whole to the agent (`POST /v1/cli`, see one-shot.ts): quick
 * ones that print one answer. Not those that report progress or wait on a VM (Ctrl-C is this
 * process's business), stream (`events`, `console`), need this terminal (`ssh`, `edit`), or name
 * files (a path is the caller's, read with the caller's rights: add, disk…). The build writes the
 * table of {@link oneShotTable} into the executable (scripts/build.mjs), so a call that cannot
 * be handed over costs nothing to find out.
 *
 * @example
 * ```ts
 * isOneShot(routeOf("ls")!);    // true
 * isOneShot(routeOf("start")!); // false: it waits (and draws progress)
 * ```
 */
import type { CommandRoute } from "../api/command-routes.ts";

/** The environment a rendering reads (colour): the only variables a client sends with a call. */
export const ONE_SHOT_ENV = ["NO_COLOR", "FORCE_COLOR", "TERM"] as const;

/** Commands whose long steps report progress (drawn on stderr unless --json). */
export const WITH_PROGRESS: ReadonlySet<string> = new Set([
  "snapshot create",
  "snapshot load",
  "snapshot delete",
  "disk convert",
  // A graceful stop's steps, a start's wait condition (see progress-renderer.ts).
  "start",
  "stop",
  "rm",
]);

/** Commands that wait on a VM through an agent: Ctrl-C says the agent carries on with them (exit 130). */
export const WAITING_COMMANDS: ReadonlySet<string> = new Set(["start", "stop", "rm", "apply", "edit"]);

/** Long or streaming commands beside those: never handed over. */
const LONG_OR_STREAMING: ReadonlySet<string> = new Set(["events", "console", "migrate"]);

export function isOneShot(route: CommandRoute): boolean {
  const name = route.command;
  return (
    !WITH_PROGRESS.has(name) &&
    !WAITING_COMMANDS.has(name) &&
    !LONG_OR_STREAMING.has(name) &&
    route.streams === undefined &&
    route.localPaths.length === 0 &&
    route.configFile === undefined &&
    route.needsTerminal === undefined
  );
}

/**
 * Every command name and alias, each with whether it may be handed over: a two-word name
 * (`snapshot ls`) is looked up before its first word, as the parser does.
 */
export function oneShotTable(routes: readonly CommandRoute[]): Record<string, boolean> {
  const table: Record<string, boolean> = {};
  for (const route of routes) {
    for (const name of [route.command, ...(route.spec.aliases ?? [])]) table[name] = isOneShot(route);
  }
  return table;
}
