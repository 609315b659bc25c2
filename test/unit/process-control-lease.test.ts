/**
 * A cluster host spawns QEMU only while its lease holds (issue 13): ProcessControl's `beforeSpawn`
 * is asked in the same tick as the spawn and once more after it, and ClusterRuntime judges the
 * lease by this process's monotonic clock at that moment. The chaos test found the case: an agent
 * frozen (SIGSTOP) in the middle of a routed start, continued 9 s later, spawned the VM's QEMU
 * while the VM, recovered by HA, already ran on another host.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProcessControl } from "../../src/adapters/process-control.ts";
import { ClusterRuntime } from "../../src/api/cluster-runtime.ts";
import { MaqetError } from "../../src/errors/maqet-error.ts";
import { waitUntil } from "../support/poll.ts";

const FAKE_QEMU = fileURLToPath(new URL("../fixtures/fake-qemu.mjs", import.meta.url));
let runtimeRoot: string;

beforeAll(async () => {
  runtimeRoot = await mkdtemp(join(tmpdir(), "maqet-pc-lease-"));
});
afterAll(async () => {
  for (const pid of livePidsNaming(runtimeRoot)) process.kill(pid, "SIGKILL");
  await rm(runtimeRoot, { recursive: true, force: true });
});

/** Live (not zombie) processes whose command line names `text`: ProcessControl's own /proc scan. */
const livePidsNaming = (text: string): number[] => createProcessControl({ runtimeRoot }).findProcesses(text);

const lost = () => new MaqetError("HOST_LEASE_LOST", "Host 'c' cannot act now: its lease ran out 9094 ms ago.");

async function launchWith(beforeSpawn: () => void) {
  const vmId = randomUUID();
  const pc = createProcessControl({ runtimeRoot, beforeSpawn });
  const dir = await pc.prepareRuntimeDir(vmId);
  const args = ["-uuid", vmId, "-S", "-pidfile", `${dir}/qemu.pid`, "-qmp", `unix:${dir}/qmp.sock,server=on,wait=off`];
  return { vmId, dir, launching: pc.launch({ binary: FAKE_QEMU, args, runtimeDir: dir, logFile: `${dir}/qemu.log` }) };
}

describe("launch asks beforeSpawn", () => {
  it("spawns nothing when it refuses before the spawn", async () => {
    const { vmId, dir, launching } = await launchWith(() => {
      throw lost();
    });
    await expect(launching).rejects.toMatchObject({ code: "HOST_LEASE_LOST" });
    expect(livePidsNaming(vmId)).toEqual([]);
    expect(existsSync(`${dir}/qemu.pid`)).toBe(false);
  });

  it("kills what it spawned when it refuses just after (a process frozen between the two)", async () => {
    let asked = 0;
    const { vmId, launching } = await launchWith(() => {
      if (++asked === 2) throw lost();
    });
    await expect(launching).rejects.toMatchObject({ code: "HOST_LEASE_LOST" });
    expect(asked).toBe(2);
    await waitUntil(
      "the QEMU spawned to be gone",
      () => livePidsNaming(vmId),
      (pids) => pids.length === 0,
    );
  });

  it("launches when it allows, asking twice", async () => {
    let asked = 0;
    const { vmId, launching } = await launchWith(() => void asked++);
    const launched = await launching;
    expect(asked).toBe(2);
    expect(livePidsNaming(vmId)).toEqual([launched.pid]);
    process.kill(launched.pid, "SIGKILL");
  });
});

describe("ClusterRuntime.assertLeaseValid", () => {
  const runtime = (member: boolean) =>
    new ClusterRuntime({ db: {} as never, host: "c", member, metadata: () => ({}) as never });

  it("holds until the last renewal's start + its validity, by the monotonic clock now", () => {
    const cluster = runtime(true);
    cluster.assertLeaseValid(); // never renewed: no judgement yet (not a member of a cluster yet)
    cluster.leaseRenewed(performance.now(), 60_000);
    cluster.assertLeaseValid();
    cluster.leaseRenewed(performance.now() - 9_094, 2_000);
    expect(() => cluster.assertLeaseValid()).toThrow(expect.objectContaining({ code: "HOST_LEASE_LOST" }));
    const said = (() => {
      try {
        cluster.assertLeaseValid();
        return "";
      } catch (error) {
        return (error as Error).message;
      }
    })();
    expect(Number(/its lease ran out (\d+) ms ago/.exec(said)?.[1])).toBeGreaterThanOrEqual(7_094);
  });

  it("refuses while the member is not serving, and never judges a non-member", () => {
    const member = runtime(true);
    member.leaseRenewed(performance.now(), 60_000);
    member.serving = false;
    expect(() => member.assertLeaseValid()).toThrow(expect.objectContaining({ code: "HOST_LEASE_LOST" }));
    const observer = runtime(false);
    observer.leaseRenewed(performance.now() - 60_000, 1);
    observer.assertLeaseValid();
  });
});
