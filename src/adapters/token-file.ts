/**
 * The agent's TCP bearer token on disk: read from `--token-file` (which must be a regular file of
 * mode 0600 or stricter, owned by this user, at least 16 characters), or generated at start
 * (32 random bytes, base64url) into a fresh 0600 file.
 *
 * @example
 * ```ts
 * const token = await readTokenFile("/etc/maqet/token");
 * const fresh = await generateTokenFile("/run/user/1000/maqet/agent.token");
 * ```
 */
import { randomBytes } from "node:crypto";
import { lstat, open, readFile, rename, unlink } from "node:fs/promises";
import { MaqetError } from "../errors/maqet-error.ts";

/** Reads a token file: refused unless a regular file, owned by us, not readable by others. */
export async function readTokenFile(path: string): Promise<string> {
  let stat: Awaited<ReturnType<typeof lstat>>;
  try {
    stat = await lstat(path);
  } catch (error) {
    throw new MaqetError(
      "PATH_NOT_FOUND",
      `Token file not found: ${path}. Create it (mode 0600) or leave --token-file out to have one generated.`,
      { cause: error },
    );
  }
  if (!stat.isFile())
    throw new MaqetError(
      "PATH_REFUSED",
      `Token file ${path} is not a regular file (a symlink?). Give a plain 0600 file.`,
    );
  if ((stat.mode & 0o077) !== 0) {
    throw new MaqetError(
      "PATH_REFUSED",
      `Token file ${path} has mode ${(stat.mode & 0o777).toString(8)}: others can read it. Run \`chmod 600 ${path}\`.`,
    );
  }
  if (process.getuid && stat.uid !== process.getuid()) {
    throw new MaqetError(
      "PATH_REFUSED",
      `Token file ${path} belongs to uid ${stat.uid}, not to this user; refusing it.`,
    );
  }
  const token = (await readFile(path, "utf8")).trim();
  if (token.length < 16)
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Token file ${path} holds a token of ${token.length} characters; use at least 16 (e.g. \`openssl rand -hex 32\`).`,
    );
  return token;
}

/** Generates a token into `path` (0600, written to a temporary name and renamed over any old one). */
export async function generateTokenFile(path: string): Promise<string> {
  const token = randomBytes(32).toString("base64url");
  const temporary = `${path}.${process.pid}.tmp`;
  await unlink(temporary).catch(() => undefined);
  const handle = await open(temporary, "wx", 0o600);
  try {
    await handle.writeFile(`${token}\n`);
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
  return token;
}
