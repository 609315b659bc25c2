/**
 * Where maqet keeps things when the caller does not say: the XDG base directories, with the
 * usual fallbacks. Pure functions of the environment they are given; they create nothing
 * (`createProcessControl().prepareRuntimeDir` creates and checks the runtime root).
 */
import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";

/** The environment variables these functions read (`process.env` fits). */
export type DirsEnv = Readonly<Record<string, string | undefined>>;

/** The XDG spec says relative values are invalid and must be ignored. */
function absoluteOrUndefined(value: string | undefined): string | undefined {
  return value !== undefined && value !== "" && isAbsolute(value) ? value : undefined;
}

/**
 * Root of the per-VM runtime directories (QMP sockets, pidfiles): `$XDG_RUNTIME_DIR/maqet`, else
 * `/tmp/maqet-<uid>`. The `/tmp` fallback is shared space, so `prepareRuntimeDir` creates it 0700
 * and refuses it when it is a symlink or owned by another user.
 *
 * @example
 * ```ts
 * defaultRuntimeRoot({ XDG_RUNTIME_DIR: "/run/user/1000" }); // "/run/user/1000/maqet"
 * defaultRuntimeRoot({}, 1000);                             // "/tmp/maqet-1000"
 * ```
 */
export function defaultRuntimeRoot(env: DirsEnv, uid: number = process.getuid?.() ?? 0): string {
  const xdg = absoluteOrUndefined(env.XDG_RUNTIME_DIR);
  return xdg !== undefined ? join(xdg, "maqet") : `/tmp/maqet-${uid}`;
}

/**
 * Directory of persistent data (the embedded PGlite store): `$XDG_DATA_HOME/maqet`, else
 * `$HOME/.local/share/maqet` (the account's home directory when `HOME` is unset).
 *
 * @example
 * ```ts
 * defaultDataDir({ XDG_DATA_HOME: "/srv/data" }); // "/srv/data/maqet"
 * defaultDataDir({ HOME: "/home/ada" });          // "/home/ada/.local/share/maqet"
 * ```
 */
export function defaultDataDir(env: DirsEnv): string {
  const xdg = absoluteOrUndefined(env.XDG_DATA_HOME);
  if (xdg !== undefined) return join(xdg, "maqet");
  const home = absoluteOrUndefined(env.HOME) ?? homedir();
  return join(home, ".local", "share", "maqet");
}
