/**
 * `maqet agent & maqet ls` (README's lines, no pause between them): the command goes through the
 * agent that is starting, never in-process beside it — also when a killed agent left its socket
 * file behind. The agent claims its socket's lock before it loads the store's modules
 * (src/agent/run-agent.ts); the CLI waits for a starting agent to answer
 * (src/adapters/starting-agent.ts), and looks again once its in-process half is loaded
 * (src/cli/agent-entry.ts). Real processes (the built CLI), the embedded store.
 */
import { lstat, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BackgroundCli, runMaqet, sandboxEnv, startMaqet } from "../support/cli-runner.ts";

describe("a command started together with its agent goes through it", { timeout: 600_000 }, () => {
  let home: string;
  let env: Record<string, string>;
  const agents: BackgroundCli[] = [];
  const socket = () => join(env.XDG_RUNTIME_DIR!, "maqet", "agent.sock");
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "maqet-race-"));
    env = sandboxEnv(home);
    // The store exists (a first store costs a minute on a loaded box; the race is not about it).
    expect((await runMaqet(["migrate", "--no-agent"], { env, cwd: home })).code).toBe(0);
  }, 300_000);
  afterAll(async () => {
    for (const a of agents) await a.stop("SIGKILL");
    await rm(home, { recursive: true, force: true });
  });

  /** `maqet agent` and, at the same instant, `maqet ls --json` (whose pid the agent's log must name). */
  async function race(): Promise<{ agent: BackgroundCli; ls: Awaited<ReturnType<typeof runMaqet>> }> {
    const agent = startMaqet(["agent", "--log-format", "json"], { env, cwd: home });
    agents.push(agent);
    const ls = await runMaqet(["ls", "--json"], { env, cwd: home });
    return { agent, ls };
  }

  it("a fresh start: ls waits for the agent and its request is in the agent's log", async () => {
    const { agent, ls } = await race();
    expect(ls.stderr.replace(/^maqet: waiting for the maqet agent .*\n/m, "")).toBe("");
    expect(ls.code).toBe(0);
    expect(ls.json()).toEqual([]);
    await agent.waitForOutput('"path":"/v1/vms"', 30_000, "stderr");
    expect(agent.stderr()).not.toMatch(/STORE_LOCKED|locked/i);
    expect(agent.child.exitCode).toBeNull();
  });

  it("after a kill -9 (its socket file left behind): ls goes through the next agent", async () => {
    const first = agents.at(-1)!;
    expect(await first.stop("SIGKILL")).toBeNull();
    expect((await lstat(socket())).isSocket()).toBe(true); // left behind, nobody answers
    const { agent, ls } = await race();
    expect(ls.stderr.replace(/^maqet: waiting for the maqet agent .*\n/m, "")).toBe("");
    expect(ls.code).toBe(0);
    expect(ls.json()).toEqual([]);
    await agent.waitForOutput('"path":"/v1/vms"', 30_000, "stderr");
    expect(agent.child.exitCode).toBeNull();
  });
});
