/**
 * Deno smoke run: the library from its TypeScript sources on Deno, on the embedded store, with
 * one real VM started and stopped. Run by test/e2e/deno.qemu.test.ts:
 *   npx deno@2.9.6 run -A test/deno/smoke.ts
 * Prints "deno smoke: ok <types>" and exits 0, or prints the error and exits 1.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createMaqet } from "../../src/mod.ts";

const dir = await mkdtemp(join(tmpdir(), "maqet-deno-"));
const maqet = createMaqet({
  dataDir: join(dir, "data"),
  runtimeDir: join(dir, "run"),
  env: { PATH: process.env.PATH },
});
let code = 0;
try {
  await maqet.add({ name: "deno", accel: "tcg", memory: "64M" });
  const started = await maqet.start("deno");
  if (started.state !== "running" || !started.pid) throw new Error(`not running: ${JSON.stringify(started)}`);
  const status = await maqet.qmp<{ status: string }>("deno", "query-status");
  if (status.status !== "running") throw new Error(`query-status said ${status.status}`);
  await maqet.stop("deno", { timeoutMs: 500 });
  const types = (await maqet.history("deno")).map((e) => e.type);
  const denoVersion = (globalThis as { Deno?: { version: { deno: string } } }).Deno?.version.deno;
  console.log(`deno smoke: ok ${types.join(",")} (${denoVersion ? `Deno ${denoVersion}` : "not Deno"})`);
} catch (error) {
  console.error("deno smoke: failed:", error);
  await maqet.stop("deno", { force: true }).catch(() => undefined);
  code = 1;
} finally {
  await maqet.close();
  await rm(dir, { recursive: true, force: true });
}
process.exit(code);
