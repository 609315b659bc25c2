/**
 * The CLI's wait for an agent that is still starting (src/adapters/starting-agent.ts): a live
 * process whose command line runs `… agent` holds `<socket>.lock` and binds the socket later.
 * Real processes, a real unix socket, real time (short).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { lstatSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitForStartingAgent } from "../../src/adapters/starting-agent.ts";

describe("waitForStartingAgent", () => {
  let dir: string;
  let socket: string;
  let holder: ChildProcess | undefined;
  let server: Server | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "maqet-starting-"));
    socket = join(dir, "agent.sock");
  });
  afterEach(async () => {
    holder?.kill("SIGKILL");
    holder = undefined;
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  /** A stand-in agent: a live process with `agent` in its argv, named in the socket's lock. */
  function startingAgent(argv = ["agent"]): ChildProcess {
    holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)", ...argv], { stdio: "ignore" });
    const lock = { pid: holder.pid, host: hostname(), since: new Date().toISOString(), command: "maqet agent" };
    writeFileSync(`${socket}.lock`, JSON.stringify(lock));
    return holder;
  }

  it("waits until the agent holding the lock listens, and says once what it waits for", async () => {
    startingAgent();
    const said: string[] = [];
    const t0 = Date.now();
    setTimeout(() => {
      server = createServer().listen(socket);
    }, 400);
    const ready = await waitForStartingAgent(socket, { say: (t) => said.push(t), quietMs: 100, everyMs: 20 });
    expect(ready).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    expect(said).toHaveLength(1);
    expect(said[0]).toContain(`maqet agent (pid ${holder!.pid}) to finish starting`);
  });

  it("does not wait without a lock, for a dead holder, or for a process that is not an agent", async () => {
    const say = (t: string) => expect.fail(`said ${t}`);
    expect(await waitForStartingAgent(socket, { say })).toBe(false);
    const dead = startingAgent();
    dead.kill("SIGKILL");
    await new Promise((r) => dead.once("exit", r));
    expect(await waitForStartingAgent(socket, { say, quietMs: 10_000 })).toBe(false);
    startingAgent(["not-the-agent"]);
    expect(await waitForStartingAgent(socket, { say, quietMs: 10_000 })).toBe(false);
  });

  it("stops waiting when the agent exits before it listens", async () => {
    const agent = startingAgent();
    setTimeout(() => agent.kill("SIGKILL"), 200);
    const t0 = Date.now();
    expect(await waitForStartingAgent(socket, { say: () => {}, everyMs: 20, timeoutMs: 20_000 })).toBe(false);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it("a socket file nobody answers on (a killed agent's) is not ready: waits until the starting agent listens", async () => {
    // A listener killed with SIGKILL leaves its socket file (Node unlinks it only on close()).
    const dead = spawn(
      process.execPath,
      ["-e", `require("net").createServer().listen(${JSON.stringify(socket)}, () => console.log("up"))`],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    await new Promise((r) => dead.stdout!.once("data", r));
    dead.kill("SIGKILL");
    await new Promise((r) => dead.once("exit", r));
    expect(lstatSync(socket).isSocket()).toBe(true);
    startingAgent();
    const t0 = Date.now();
    setTimeout(() => {
      rmSync(socket); // what the starting agent does under its lock, then it binds
      server = createServer().listen(socket);
    }, 400);
    expect(await waitForStartingAgent(socket, { say: () => {}, everyMs: 20, timeoutMs: 20_000 })).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
  });
});
