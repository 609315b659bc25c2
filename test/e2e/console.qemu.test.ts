/**
 * `maqet console` as a user runs it, on the test guest (one real boot under TCG): followers see
 * the guest's marker while other commands still get the embedded store (a follower holds no
 * lock), Ctrl-C ends a follower with exit 0, a follower ends by itself when the VM stops, and
 * the plain `console` prints the last run's log.
 */
import type { ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox, startMaqet, waitFor } from "../support/cli-runner.ts";
import { ensureGuest, GUEST_LINES, guestVmYaml, markerLine } from "../support/guest.ts";

interface Follower {
  child: ChildProcess;
  /** stdout and stderr so far. */
  out: () => string;
  exit: Promise<{ code: number | null; signal: string | null }>;
}

describe("maqet console on the test guest (real QEMU, TCG, embedded store)", { timeout: 180_000 }, () => {
  let box: CliSandbox;
  const followers: Follower[] = [];

  const follow = (): Follower => {
    const started = startMaqet(["console", "g", "--follow"], { cwd: box.home, env: box.env });
    const follower = {
      child: started.child,
      out: () => started.stdout() + started.stderr(),
      exit: started.exited.then(({ code, signal }) => ({ code, signal })),
    };
    followers.push(follower);
    return follower;
  };

  beforeAll(async () => {
    const guest = await ensureGuest();
    box = await createCliSandbox();
    await writeFile(join(box.home, "g.yaml"), guestVmYaml(guest, { name: "g", markers: "HELLO" }));
  }, 10 * 60_000);
  afterAll(async () => {
    for (const f of followers) if (f.child.exitCode === null) f.child.kill("SIGKILL");
    await box.run(["stop", "g", "--force"]);
    await box.cleanup();
  });

  it("follows the boot, holds no store lock, stops on Ctrl-C or when the VM stops", async () => {
    const add = await box.run(["add", "g.yaml"]);
    expect(add.code, add.stderr).toBe(0);
    const never = await box.run(["console", "g"]);
    expect(never.code).toBe(1);
    expect(never.stderr).toContain("never run");

    const t0 = Date.now();
    const start = await box.run(["start", "g"]);
    expect(start.stderr).toBe("");
    expect(start.code).toBe(0);
    const a = follow();
    const b = follow();
    expect(await waitFor(async () => markerLine("HELLO").test(a.out()), 90_000), a.out()).toBe(true);
    console.log(`console e2e: start → marker seen by a follower ${Date.now() - t0} ms`);
    expect(await waitFor(async () => markerLine("HELLO").test(b.out()), 60_000), b.out()).toBe(true);

    // Both followers are still running, and the embedded store is free for other commands.
    expect(a.child.exitCode).toBeNull();
    const status = await box.run(["status", "g", "--json"]);
    expect(status.code, status.stderr).toBe(0);
    const s = status.json<{ state: string; serialLog: string; runtimeDir: string }>();
    expect(s.state).toBe("running");
    expect(s.serialLog).toBe(join(s.runtimeDir, "serial.log"));

    // Ctrl-C ends a follower normally.
    b.child.kill("SIGINT");
    expect(await b.exit).toEqual({ code: 0, signal: null });

    // The guest answers the ACPI power button; once QEMU is gone the other follower ends by itself.
    expect(await waitFor(async () => GUEST_LINES.ready.test(a.out()), 60_000)).toBe(true);
    const stop = await box.run(["stop", "g", "--timeout", "30", "--json"]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.json<{ lastStop: { detail: string } }>().lastStop.detail).toBe("shutdown");
    const ended = await Promise.race([a.exit, new Promise((r) => setTimeout(() => r("still running"), 60_000))]);
    expect(ended).toEqual({ code: 0, signal: null });
    expect(a.out()).toMatch(GUEST_LINES.acpiPoweroff);
    expect(a.out().indexOf("MAQET-MARKER HELLO")).toBe(a.out().lastIndexOf("MAQET-MARKER HELLO"));

    // The last run's log stays readable while the VM is stopped.
    const printed = await box.run(["console", "g"]);
    expect(printed.code).toBe(0);
    expect(printed.stdout).toMatch(markerLine("HELLO"));
    expect(printed.stdout).toMatch(GUEST_LINES.acpiPoweroff);
    const json = await box.run(["console", "g", "--json"]);
    expect(json.json<{ vm: string; state: string; text: string }>()).toMatchObject({ vm: "g", state: "stopped" });
    expect(json.json<{ text: string }>().text).toMatch(markerLine("HELLO"));
  });
});
