/**
 * The real {@link FileReader}: whether a file exists, and its text (a serial log may be large:
 * only its last 1 MiB is read).
 *
 * @example
 * ```ts
 * await fileReader.exists("/srv/share/ready");
 * ```
 */
import { access, open } from "node:fs/promises";
import type { FileReader } from "../actors/ports.ts";

const MAX_READ_BYTES = 1024 * 1024;

export const fileReader: FileReader = {
  exists: (path) =>
    access(path).then(
      () => true,
      () => false,
    ),
  readText: async (path) => {
    const handle = await open(path, "r").catch(() => undefined);
    if (handle === undefined) return undefined;
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, MAX_READ_BYTES);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer.toString("utf8");
    } finally {
      await handle.close();
    }
  },
};
