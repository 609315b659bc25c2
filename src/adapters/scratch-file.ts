/**
 * A file something else writes (QEMU's `screendump`, a tool's output), read back and removed: a
 * fresh private directory under the system's temporary directory, the file's bytes, then the
 * directory is gone, whatever happened.
 *
 * @example
 * ```ts
 * const png = await readWrittenFile("screen.png", (file) => maqet.screendump("web", file).then(() => undefined));
 * ```
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export async function readWrittenFile(name: string, write: (path: string) => Promise<void>): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), "maqet-scratch-"));
  try {
    const file = join(dir, name);
    await write(file);
    return await readFile(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
