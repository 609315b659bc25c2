/**
 * Where QEMU may write a file maqet asks it to write (a screendump): an absolute path outside
 * the system directories of path-safety.ts, judged as written and by its real parent, so a
 * symlink into `/etc` is refused as surely as `/etc` itself. QEMU resolves relative paths
 * against its own working directory, so maqet always sends an absolute one.
 *
 * @example
 * ```ts
 * await resolveOutputFile("shot.png"); // "/home/me/shot.png" (relative to this process's cwd)
 * await resolveOutputFile("/etc/x.ppm"); // throws PATH_REFUSED
 * ```
 */
import { realpath } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { MaqetError } from "../errors/maqet-error.ts";
import { systemDirectoryOf } from "./path-safety.ts";

/**
 * The absolute path QEMU should write to; throws `PATH_REFUSED` (exit 4) inside a system
 * directory, `INVALID_ARGUMENT` when the parent directory does not exist.
 *
 * @example
 * ```ts
 * const file = await resolveOutputFile("/tmp/web.ppm");
 * ```
 */
export async function resolveOutputFile(file: string, cwd: string = process.cwd()): Promise<string> {
  if (file === "" || file.includes("\0")) {
    throw new MaqetError("INVALID_ARGUMENT", `Invalid output file ${JSON.stringify(file)}: give a file path.`);
  }
  const written = resolve(cwd, file);
  let realParent: string;
  try {
    realParent = await realpath(dirname(written));
  } catch (error) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Cannot write ${written}: its directory ${dirname(written)} does not exist. Create it first.`,
      { cause: error, details: { path: written } },
    );
  }
  const real = join(realParent, basename(written));
  for (const candidate of [written, real]) {
    const rule = systemDirectoryOf(candidate);
    if (rule !== undefined) {
      throw new MaqetError(
        "PATH_REFUSED",
        `Refusing to let QEMU write ${written}${candidate === real && real !== written ? ` (its real path is ${real})` : ""}: ${rule} is a system directory. Write it under your home directory or /tmp.`,
        { details: { path: written, realPath: real, rule } },
      );
    }
  }
  return real;
}
