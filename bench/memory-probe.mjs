// One process whose memory the memory measure reads, in one of three shapes:
//   node   - nothing loaded (Node's floor)
//   pglite - a bare PGlite on a file-backed data directory, one query run
//   maqet  - the library with its embedded store open and one firmware-only VM running
// Usage: node --expose-gc memory-probe.mjs MODE DIR DIST. Prints one JSON line:
// { rss, heapUsed, external, arrayBuffers, qemuRss? } in bytes, after GC when exposed.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { rssOf } from "./raw-qemu.mjs";

const [mode, dir, dist] = process.argv.slice(2);

async function settle() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
  const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, external, arrayBuffers };
}

mkdirSync(dir, { recursive: true });
let out;
if (mode === "node") {
  out = await settle();
} else if (mode === "pglite") {
  const { PGlite } = await import("@electric-sql/pglite");
  const pglite = await PGlite.create({ dataDir: join(dir, "pglite") });
  await pglite.query("select 1");
  out = await settle();
  await pglite.close();
} else if (mode === "maqet") {
  const { createMaqet } = await import(pathToFileURL(join(dist, "src/mod.js")).href);
  const maqet = createMaqet({
    dataDir: join(dir, "data"),
    runtimeDir: join(dir, "rt"),
    env: { PATH: process.env.PATH },
  });
  let pid;
  try {
    if (!(await maqet.list()).some((vm) => vm.name === "mem")) {
      await maqet.add(
        { name: "mem", memory: "64M", cpu: 1, accel: "tcg", machine: "q35", display: "none", args: ["-nodefaults"] },
        { name: "mem" },
      );
    }
    pid = (await maqet.start("mem")).pid;
    await maqet.qmp("mem", "query-status");
    out = { ...(await settle()), qemuRss: await rssOf(pid) };
  } finally {
    if (pid !== undefined) await maqet.stop("mem", { force: true });
    await maqet.close();
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
process.stdout.write(`${JSON.stringify(out)}\n`);
