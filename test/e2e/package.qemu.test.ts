/**
 * The library, installable: `npm pack` gives a tarball that installs into an empty project and
 * runs the README's library example (a firmware-only VM, real QEMU); Deno imports it the
 * documented way (an import map entry to the package's `exports`) and runs the same example,
 * and `deno publish --dry-run` passes (slow types, license, the file list). Deno comes through
 * `npx deno@2.9.6`, never a package.json dependency.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectRoot } from "../support/build-dist.ts";
import { processAlive } from "../support/cli-runner.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd, timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024, env: { ...process.env, NO_COLOR: "1", ...env } },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** The README's "As a library" example, as written there. */
async function readmeExample(): Promise<string> {
  const readme = await readFile(join(projectRoot, "README.md"), "utf8");
  const match = /As a library:\s*```ts\n([\s\S]*?)```/.exec(readme);
  if (!match) throw new Error("README.md has no ```ts block after 'As a library:'");
  return match[1]!;
}

/**
 * The example made runnable in `dir`: its data dir moved into `dir`, its vm.yaml a firmware-only
 * VM, and a last line printing the event types it saw (so the test knows it ran to the end).
 */
async function prepareExample(dir: string, importFrom: string): Promise<string> {
  const example = await readmeExample();
  expect(example).toContain('import { createMaqet } from "maqet";');
  expect(example).toContain('createMaqet({ dataDir: "/var/lib/my-app/maqet" })');
  await writeFile(
    join(dir, "vm.yaml"),
    "binary: qemu-system-x86_64\naccel: tcg\nmemory: 64M\n", // firmware only: no disk, no kernel
  );
  return `${example
    .replace('from "maqet"', `from ${JSON.stringify(importFrom)}`)
    .replace('"/var/lib/my-app/maqet"', JSON.stringify(join(dir, "data")))
    .replace("createMaqet({ dataDir:", `createMaqet({ runtimeDir: ${JSON.stringify(join(dir, "run"))}, dataDir:`)}
console.log("example: done");
`;
}

/** What the example printed: QMP's status, and the events it saw (position, type). */
function checkExampleOutput(out: Run): void {
  expect(out.stderr).not.toMatch(/Error/);
  expect(out.code).toBe(0);
  expect(out.stdout).toMatch(/status: 'running'|"status":\s*"running"|status: "running"/);
  // events$ replays the stored events, then follows: by the end of the 30 s stop it has them.
  expect(out.stdout).toMatch(/\d+ vm\.defined/);
  expect(out.stdout).toMatch(/\d+ vm\.started/);
  expect(out.stdout).toContain("example: done");
}

/** No QEMU of this example left: the VM's pid from the runtime dir's pid file, if any. */
async function noQemuLeft(dir: string): Promise<void> {
  const runDir = join(dir, "run");
  const vms = await readdir(runDir).catch(() => [] as string[]);
  for (const vm of vms) {
    const pid = Number(await readFile(join(runDir, vm, "qemu.pid"), "utf8").catch(() => "0"));
    if (pid > 0) expect(await processAlive(pid)).toBe(false);
  }
}

describe("the package: npm pack → npm install → README example (real QEMU)", { timeout: 600_000 }, () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "maqet-pack-"));
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it("the tarball installs into an empty project and runs the README's library example", async () => {
    const pack = await run("npm", ["pack", "--json", "--pack-destination", work], projectRoot, 120_000);
    expect(pack.code, pack.stderr).toBe(0);
    const [info] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = info!.files.map((f) => f.path);
    // What a user needs, and nothing of the tests: the built library, the CLI, migrations, schema.
    expect(files).toEqual(
      expect.arrayContaining([
        "dist/src/mod.js",
        "dist/src/mod.d.ts",
        "dist/src/cli/bin.js",
        "schema/vm-config.schema.json",
        "package.json",
      ]),
    );
    expect(files.some((f) => f.startsWith("dist/migrations/"))).toBe(true);
    expect(files.filter((f) => f.startsWith("test/") || f.startsWith("src/"))).toEqual([]);

    const app = join(work, "app");
    await run("mkdir", ["-p", app], work, 10_000);
    await writeFile(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    // The dependencies come from the local npm cache when they are there, else the registry.
    const install = await run(
      "npm",
      ["install", "--prefer-offline", "--no-audit", "--no-fund", join(work, info!.filename)],
      app,
      300_000,
    );
    expect(install.code, install.stderr).toBe(0);
    await writeFile(join(app, "example.mjs"), await prepareExample(app, "maqet"));
    const out = await run(process.execPath, ["example.mjs"], app, 180_000);
    checkExampleOutput(out);
    await noQemuLeft(app);
    // The installed CLI runs too.
    const version = await run(process.execPath, ["node_modules/maqet/dist/src/cli/bin.js", "--version"], app, 60_000);
    expect(version.stdout.trim()).toBe(
      (JSON.parse(await readFile(join(projectRoot, "package.json"), "utf8")) as { version: string }).version,
    );
  });
});

describe("the package on Deno (real QEMU)", { timeout: 600_000 }, () => {
  const deno = (args: string[], cwd: string, timeoutMs: number) =>
    run("npx", ["--yes", "deno@2.9.6", ...args], cwd, timeoutMs);

  it("`deno publish --dry-run` passes (slow types, license, files)", async () => {
    const r = await deno(["publish", "--dry-run", "--allow-dirty"], projectRoot, 300_000);
    const out = `${r.stdout}\n${r.stderr}`;
    expect(out, out.slice(-3000)).toContain("Success Dry run complete");
    expect(r.code).toBe(0);
    expect(out).not.toMatch(/^error/m);
    // The published files are the sources, not the tests.
    expect(out).toMatch(/src\/mod\.ts/);
    expect(out).not.toMatch(/\btest\/e2e\//);
  });

  it("a project importing it through an import map runs the README's library example", async () => {
    const app = await mkdtemp(join(tmpdir(), "maqet-deno-app-"));
    try {
      const mod = pathToFileURL(join(projectRoot, "src/mod.ts")).href;
      await writeFile(join(app, "deno.json"), JSON.stringify({ imports: { maqet: mod } }, null, 2));
      await writeFile(join(app, "example.ts"), await prepareExample(app, "maqet"));
      const out = await deno(["run", "-A", "example.ts"], app, 300_000);
      checkExampleOutput(out);
      await noQemuLeft(app);
    } finally {
      await rm(app, { recursive: true, force: true });
    }
  });
});
