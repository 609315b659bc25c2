/**
 * `maqet doctor` on this host, through the CLI (the real `maqet` binary): binaries (path, version, how found), KVM
 * probed by running QEMU, the store opened and migrated, the runtime directory's modes, and a
 * stale QMP socket (its listener SIGKILLed) reported with the fix.
 */
import { spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrations } from "../../migrations/index.ts";
import type { DoctorReport } from "../../src/api/ops/doctor-ops.ts";
import { runMaqet, sandboxEnv, waitFor } from "../support/cli-runner.ts";

let dir: string;
let env: Record<string, string | undefined>;
const vmId = "0b5c3f8e-4a1d-4c7e-9f00-3c2d1e0f9a8b";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "maqet-doctor-"));
  env = sandboxEnv(dir, { XDG_DATA_HOME: join(dir, "data") });
  // A VM directory someone opened up (0755), holding the socket of a QEMU that died by SIGKILL.
  const vmDir = join(dir, "run", "maqet", vmId);
  await mkdir(vmDir, { recursive: true, mode: 0o700 });
  await chmod(join(dir, "run", "maqet"), 0o700);
  await chmod(vmDir, 0o755);
  const socket = join(vmDir, "qmp.sock");
  const listener = spawn(
    process.execPath,
    ["-e", "require('node:net').createServer().listen(process.argv[1])", socket],
    {
      stdio: "ignore",
    },
  );
  expect(
    await waitFor(
      async () =>
        stat(socket).then(
          () => true,
          () => false,
        ),
      5000,
    ),
  ).toBe(true);
  listener.kill("SIGKILL");
  await new Promise((r) => listener.once("exit", r));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The real `maqet` binary, as a user runs it (bin.ts: its umask, its exit codes). */
const maqet = (args: string[], extraEnv: Record<string, string> = {}) =>
  runMaqet(args, { env: { ...env, ...extraEnv }, cwd: dir });

describe("maqet doctor", () => {
  it("--json: binaries, KVM, store, runtime dir, stale socket", { timeout: 180_000 }, async () => {
    const r = await maqet(["doctor", "--json"]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as DoctorReport;

    const img = report.binaries.find((b) => b.program === "qemu-img")!;
    expect(img).toMatchObject({
      found: true,
      required: true,
      how: "PATH",
      version: expect.stringMatching(/^\d+\.\d+\.\d+$/),
    });
    expect(report.binaries.find((b) => b.program === "qemu-system-x86_64")).toMatchObject({ found: true, how: "PATH" });

    const kvm = report.accelerator.kvm as { device: boolean; works: boolean; enabled?: boolean; status?: string };
    expect(typeof kvm.works).toBe("boolean");
    if (kvm.works) expect(kvm).toMatchObject({ enabled: true, status: "running" });
    expect(["kvm", "tcg"]).toContain(report.accelerator.recommended);

    expect(report.store).toMatchObject({ reachable: true, kind: "pglite", migrations: migrations.length });
    expect(report.store.location).toBe(join(dir, "data", "maqet", "pglite"));

    expect(report.runtimeDir).toMatchObject({ path: join(dir, "run", "maqet"), exists: true, mode: "0700" });
    expect(report.runtimeDir.problems).toEqual([
      `${vmId}: is mode 0755: others can enter it (expected 0700)`,
      `${vmId}: qmp.sock is mode 0755, expected 0600`, // the listener ran with umask 022
    ]);
    expect(report.checks.find((c) => c.name === "runtime-dir")).toMatchObject({ status: "warn" });

    expect(report.staleSockets).toEqual([
      { path: join(dir, "run", "maqet", vmId, "qmp.sock"), vmId, reason: "nothing answers on it (QEMU is gone)" },
    ]);
    expect(report.checks.find((c) => c.name === `socket:${vmId}`)?.fix).toBe(
      `Remove it: rm ${join(dir, "run", "maqet", vmId, "qmp.sock")} (maqet replaces it on the next start anyway).`,
    );
    expect(report.ok).toBe(true);
  });

  it("text: one line per check; MAQET_QEMU_IMG is reported as how qemu-img was found; a missing one fails", {
    timeout: 180_000,
  }, async () => {
    const which = (await maqet(["doctor", "--json", "--skip-kvm"])).stdout;
    const path = (JSON.parse(which) as DoctorReport).binaries.find((b) => b.program === "qemu-img")!.path!;
    const text = await maqet(["doctor", "--skip-kvm"], { MAQET_QEMU_IMG: path });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^ok +binary:qemu-img +${path} \\(env:MAQET_QEMU_IMG\\), version \\d`, "m"));
    expect(text.stdout).toMatch(/^warn +kvm +KVM not probed: skipped \(--skip-kvm\)/m);
    expect(text.stdout).toContain("To do:");

    const missing = await maqet(["doctor", "--json", "--skip-kvm"], { MAQET_QEMU_IMG: join(dir, "nope") });
    const report = JSON.parse(missing.stdout) as DoctorReport;
    expect(report.ok).toBe(false);
    expect(report.checks.find((c) => c.name === "binary:qemu-img")).toMatchObject({ status: "fail" });
  });

  it("reports the accelerator `accel: auto` really gets at start (the one in QEMU's argv)", {
    timeout: 180_000,
  }, async () => {
    const report = JSON.parse((await maqet(["doctor", "--json", "--skip-kvm"])).stdout) as DoctorReport;
    expect(["kvm", "tcg"]).toContain(report.accelerator.auto);
    const text = await maqet(["doctor", "--skip-kvm"]);
    expect(text.stdout).toContain(`accel: auto picks ${report.accelerator.auto} on this host`);

    const config = join(dir, "auto.yaml");
    await writeFile(config, "name: auto\nmemory: 64M\naccel: auto\nmachine: q35\ndisplay: none\n");
    expect((await maqet(["add", config])).code).toBe(0);
    expect((await maqet(["start", "auto"])).code).toBe(0);
    try {
      const status = JSON.parse((await maqet(["status", "auto", "--json"])).stdout) as { pid: number };
      const argv = (await readFile(`/proc/${status.pid}/cmdline`, "utf8")).split("\0");
      expect(argv[argv.indexOf("-accel") + 1]).toBe(report.accelerator.auto);
    } finally {
      expect((await maqet(["stop", "auto", "--force"])).code).toBe(0);
    }
  });

  it("--strict exits 1 when a check fails, 0 when none does; without it a failed check still exits 0", {
    timeout: 180_000,
  }, async () => {
    const missing = { MAQET_QEMU_IMG: join(dir, "nope") };
    expect((await maqet(["doctor", "--skip-kvm", "--strict"], missing)).code).toBe(1);
    expect((await maqet(["doctor", "--skip-kvm", "--strict", "--json"], missing)).code).toBe(1);
    expect((await maqet(["doctor", "--skip-kvm"], missing)).code).toBe(0);
    const healthy = await maqet(["doctor", "--skip-kvm", "--strict"]);
    expect(healthy.stdout).toContain("No failures.");
    expect(healthy.code).toBe(0);
  });
});
