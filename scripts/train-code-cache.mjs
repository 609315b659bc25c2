#!/usr/bin/env node
// Makes dist/src/bin/cli.cjs.cache, V8's code cache of the `maqet` bundle (scripts/build.mjs runs
// this in a clean `node`; scripts/maqet-bin.cjs uses the cache). A cache made right after compiling
// holds only what V8 compiles eagerly; one made after running holds every function that ran. So
// this runs the calls the cache is for: `ls`, `status VM` and `qmp VM query-status` (text and
// --json, and an error) through a stand-in agent on a temporary unix socket, in this process, then
// writes the cache. Nothing here is printed; a failure leaves no cache (slower, not wrong).
//
//   node scripts/train-code-cache.mjs dist/src/bin
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const dir = resolve(process.argv[2] ?? "dist/src/bin");
const { compileCli, runCli, cacheFile } = createRequire(import.meta.url)(join(dir, "maqet.js"));
rmSync(cacheFile, { force: true });

const vm = (name, state) => ({
  name,
  id: "0190b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b",
  state,
  pid: state === "running" ? 4242 : null,
  detail: null,
  qmpSocket: `/run/user/1000/maqet/${name}/qmp.sock`,
  runtimeDir: `/run/user/1000/maqet/${name}`,
  serialLog: `/run/user/1000/maqet/${name}/serial.log`,
  qemuVersion: "7.2.22",
  memory: "512M",
  cpu: null,
  accel: "kvm",
  accelInUse: "kvm",
  disks: [],
  lastStop: null,
  lastError: null,
  definedAt: "2026-01-01T00:00:00.000Z",
  startedAt: "2026-01-01T00:00:01.000Z",
  updatedAt: "2026-01-01T00:00:01.000Z",
  version: 2,
  tainted: null,
  host: null,
  migration: null,
});
const answers = {
  "GET /v1/vms": [200, [vm("web", "running"), vm("db", "stopped")]],
  "GET /v1/vms/web": [200, vm("web", "running")],
  "POST /v1/vms/web/qmp": [200, { status: "running", singlestep: false, running: true }],
};
const notFound = { error: { code: "VM_NOT_FOUND", message: "VM 'nope' not found.", exitCode: 3 } };

const work = mkdtempSync(join(tmpdir(), "maqet-train-"));
const socket = join(work, "agent.sock");
const server = createServer((conn) => {
  let head = "";
  conn.on("data", (chunk) => {
    head += chunk;
    if (!head.includes("\r\n\r\n")) return;
    const [method, path] = head.split(" ");
    const [status, body] = answers[`${method} ${path}`] ?? [404, notFound];
    const text = JSON.stringify(body);
    conn.end(
      `HTTP/1.1 ${status} X\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
    );
  });
});
try {
  await new Promise((ok) => server.listen(socket, ok));
  const script = compileCli(true);
  const { runMaqet } = runCli(script);
  const io = { env: {}, stdout() {}, stderr() {}, write() {}, tty: { stdout: false, stderr: false } };
  const calls = [
    ["ls"],
    ["status", "web"],
    ["qmp", "web", "query-status"],
    ["ls", "--json"],
    ["status", "web", "--json"],
    ["status", "nope"],
  ];
  for (const argv of calls) {
    const code = await runMaqet(["--agent", socket, ...argv], io);
    if (code !== 0 && argv[1] !== "nope")
      throw new Error(`maqet ${argv.join(" ")} exited ${code} against the stand-in agent`);
  }
  writeFileSync(cacheFile, script.createCachedData());
} finally {
  server.close();
  rmSync(work, { recursive: true, force: true });
}
