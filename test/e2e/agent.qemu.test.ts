/**
 * `maqet agent` as a user runs it: a real agent process, real QEMU (firmware-only VMs), the
 * embedded store (PGlite). Issue 10's acceptance items 1 (a new user's session through the
 * agent), 3 (kill -9 of the agent mid-start, mid-stop and under 3 SSE followers) and 6
 * (socket modes, a second agent, bad requests, TCP tokens).
 */
import { lstat, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { AgentEndpoint } from "../../src/client/agent-transport.ts";
import { followAgentEvents } from "../../src/client/follow-events.ts";
import { type AgentSuite, agentForSuite, api, qemuPidsOf, storedEvents } from "../support/agent-helpers.ts";
import {
  type CliSandbox,
  runMaqet,
  type SandboxAgent,
  startSandboxAgent,
  stopSandboxAgent,
  waitFor,
} from "../support/cli-runner.ts";
import { firmwareVmYaml } from "../support/firmware-vm.ts";
import { waitUntil } from "../support/poll.ts";

interface Status {
  name: string;
  id: string;
  state: string;
  pid: number | null;
}

describe("maqet agent (real agent process, real QEMU, PGlite)", { timeout: 300_000 }, () => {
  let box: CliSandbox;
  let agent: SandboxAgent;
  let endpoint: AgentEndpoint;
  let suite: AgentSuite;
  agentForSuite(
    (s) => {
      suite = s;
      ({ box, agent, endpoint } = s);
    },
    async () => {
      for (const name of ["web", "k-start", "k-stop"]) await box.run(["stop", name, "--force"]);
    },
  );

  it("a new user's session goes through the agent: add, start, ls, status, qmp, stop, history (the log shows each)", async () => {
    const socket = await lstat(agent.socket);
    expect(socket.isSocket()).toBe(true);
    expect(socket.mode & 0o777).toBe(0o600);
    expect((await lstat(join(box.env.XDG_RUNTIME_DIR!, "maqet"))).mode & 0o777).toBe(0o700);

    await writeFile(join(box.home, "web.yaml"), firmwareVmYaml("web"));
    expect((await box.run(["add", "web.yaml"])).code).toBe(0);
    const start = await box.run(["start", "web"]);
    expect(start.stderr).toBe("");
    expect(start.code).toBe(0);
    const ls = await box.run(["ls"]);
    expect(ls.stdout).toMatch(/^web\s+running\s+\d+/m);
    const status = (await box.run(["status", "web", "--json"])).json<Status>();
    expect(status.state).toBe("running");
    expect((await qemuPidsOf(status.id)).includes(status.pid!)).toBe(true);
    const qmp = await box.run(["qmp", "web", "query-status"]);
    expect(JSON.parse(qmp.stdout)).toMatchObject({ status: "running" });
    expect((await box.run(["stop", "web", "--force"])).code).toBe(0);
    const history = (await box.run(["history", "web", "--json"])).json<{ events: Array<{ type: string }> }>().events;
    expect(history.map((e) => e.type)).toEqual(
      expect.arrayContaining(["vm.defined", "vm.start-requested", "vm.started", "qmp.command-executed", "vm.stopped"]),
    );
    // ls, status, qmp and history are handed whole to the agent (POST /v1/cli, logged as `cli <command>`);
    // add, start and stop take their own routes. A line is written as its answer closes: wait for all.
    const expected = [
      ["POST", "/v1/vms", "add"],
      ["POST", "/v1/vms/web/start", "start"],
      ["POST", "/v1/cli", "cli ls"],
      ["POST", "/v1/cli", "cli status"],
      ["POST", "/v1/cli", "cli qmp"],
      ["POST", "/v1/vms/web/stop", "stop"],
      ["POST", "/v1/cli", "cli history"],
    ] as const;
    const missing = () => {
      const requests = agent
        .log()
        .split("\n")
        .filter((l) => l.includes('"kind":"request"'))
        .map(
          (l) => JSON.parse(l) as { method: string; path: string; status: number; command?: string; source?: string },
        );
      return expected.filter(
        ([method, path, command]) =>
          !requests.some(
            (r) =>
              r.method === method && r.path === path && r.command === command && r.status < 300 && r.source === "cli",
          ),
      );
    };
    await waitUntil("the agent's log to show each call of the session", missing, (m) => m.length === 0, {
      timeoutMs: 30_000,
    });
    // The CLI opened no store: the embedded one is the agent's alone (a second opener would wait).
    const notFound = await box.run(["status", "nope", "--json"]);
    expect(notFound.code).toBe(3);
    expect(notFound.json<{ error: { code: string } }>().error.code).toBe("VM_NOT_FOUND");
  });

  it("a second agent on the same socket or data directory exits 1 naming the first's pid", async () => {
    const same = await runMaqet(["agent"], { env: box.env, cwd: box.home });
    expect(same.code).toBe(1);
    expect(same.stderr).toContain(`pid ${agent.process.pid}`);
    const other = await runMaqet(["agent", "--socket", join(box.home, "other.sock")], { env: box.env, cwd: box.home });
    expect(other.code).toBe(1);
    expect(other.stderr).toContain(`pid ${agent.process.pid}`);
    expect(other.stderr).toContain("data directory");
    // The first is unharmed.
    expect((await api(endpoint, "GET", "/v1/version")).status).toBe(200);
  });

  it("bad requests get a clear error and record nothing but the refusal; the agent lives on", async () => {
    const before = (await storedEvents(endpoint)).length;
    const unknown = await api<{ error: { code: string; exitCode: number } }>(endpoint, "GET", "/v1/nothing");
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: "ROUTE_NOT_FOUND", exitCode: 3 });
    const method = await api<{ error: { code: string } }>(endpoint, "PUT", "/v1/vms/web/start");
    expect(method.status).toBe(405);
    const bad = await agentRaw("POST", "/v1/vms/web/stop", "{not json");
    expect(bad.status).toBe(400);
    expect(bad.body).toMatch(/malformed JSON/);
    const big = await agentRaw(
      "POST",
      "/v1/vms",
      JSON.stringify({ config: "x".repeat(2 * 1024 * 1024), path: "/tmp/x.yaml" }),
    );
    expect(big.status).toBe(413);
    const field = await api<{ error: { code: string; message: string } }>(endpoint, "POST", "/v1/vms/web/stop", {
      forse: true,
    });
    expect(field.status).toBe(400);
    expect(field.body.error.message).toContain("unknown field 'forse'");
    expect((await storedEvents(endpoint)).length).toBe(before);

    expect((await box.run(["start", "web"])).code).toBe(0);
    const afterStart = (await storedEvents(endpoint)).length;
    const dangerous = await api<{ error: { code: string; exitCode: number } }>(endpoint, "POST", "/v1/vms/web/qmp", {
      command: "human-monitor-command",
      args: { "command-line": "info version" },
    });
    expect(dangerous.status).toBe(403);
    expect(dangerous.body.error).toMatchObject({ code: "QMP_REFUSED", exitCode: 4 });
    const recorded = (await storedEvents(endpoint)).slice(afterStart);
    expect(recorded.map((e) => e.type)).toEqual(["qmp.command-rejected"]);
    expect((await api(endpoint, "GET", "/v1/version")).status).toBe(200);
    expect((await box.run(["stop", "web", "--force"])).code).toBe(0);
  });

  it("over TCP every request needs the bearer token (generated into a 0600 file)", async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const env = { ...box.env, XDG_DATA_HOME: join(box.home, "tcp-data"), XDG_RUNTIME_DIR: join(box.home, "tcp-run") };
    const tcpAgent = await startSandboxAgent(env, box.home, ["--listen", `127.0.0.1:${port}`]);
    try {
      const tokenFile = join(env.XDG_RUNTIME_DIR, "maqet", "agent.token");
      expect(tcpAgent.log()).toContain(tokenFile);
      expect((await lstat(tokenFile)).mode & 0o777).toBe(0o600);
      const token = (await readFile(tokenFile, "utf8")).trim();
      const url = `http://127.0.0.1:${port}`;
      const none = await api<{ error: { code: string } }>({ url }, "GET", "/v1/vms");
      expect(none.status).toBe(401);
      expect(none.body.error.code).toBe("UNAUTHORIZED");
      const wrong = await api({ url, token: `${token.slice(0, -1)}x` }, "GET", "/v1/vms");
      expect(wrong.status).toBe(401);
      const right = await api<unknown[]>({ url, token }, "GET", "/v1/vms");
      expect(right.status).toBe(200);
      expect(right.body).toEqual([]);
    } finally {
      await stopSandboxAgent(tcpAgent);
    }
  });

  it("kill -9 of the agent mid-start, mid-stop and under 3 SSE followers: the next agent reattaches every VM; followers resume exactly", async () => {
    for (const name of ["k-start", "k-stop"]) {
      await writeFile(join(box.home, `${name}.yaml`), firmwareVmYaml(name));
      expect((await box.run(["add", `${name}.yaml`])).code).toBe(0);
    }
    expect((await box.run(["start", "k-stop"])).code).toBe(0);
    const followers = [0, 1, 2].map(() => ({
      positions: [] as number[],
      caughtUp: false,
      failed: undefined as unknown,
      stop: new AbortController(),
    }));
    const runs = followers.map((f) =>
      followAgentEvents(endpoint, {
        follow: true,
        signal: f.stop.signal,
        onEvent: (line) => f.positions.push(line.position),
        onCaughtUp: () => {
          f.caughtUp = true;
        },
      }).catch((error: unknown) => {
        f.failed = error;
        throw error;
      }),
    );
    for (const run of runs) run.catch(() => undefined); // reported by the wait below, or by Promise.all(runs) at the end
    // The scenario is a kill under three connected followers: each has its stream (caught up)
    // before anything else happens. A first connection that fails is an error, not a retry.
    await waitUntil(
      "the three followers to be connected and caught up",
      () => followers.map((f) => (f.failed !== undefined ? `failed: ${String(f.failed)}` : f.caughtUp)),
      (states) => states.every((state) => state === true),
      { timeoutMs: 60_000 },
    );
    const seen = (vm: string, type: string) =>
      storedEvents(endpoint, vm).then((events) => events.some((e) => e.type === type));
    // Both operations in flight, then kill -9 the agent.
    void api(endpoint, "POST", "/v1/vms/k-start/start").catch(() => undefined);
    void api(endpoint, "POST", "/v1/vms/k-stop/stop", { timeout: 30 }).catch(() => undefined);
    expect(
      await waitFor(
        async () => (await seen("k-start", "vm.start-requested")) && (await seen("k-stop", "vm.stop-requested")),
        60_000,
      ),
    ).toBe(true);
    agent.process.kill("SIGKILL");
    await new Promise((r) => agent.process.once("exit", r));

    agent = suite.agent = await startSandboxAgent(box.env, box.home); // stopped after the suite
    // Every VM reconciled with reality: running means its QEMU lives, anything else means none does.
    for (const name of ["k-start", "k-stop"]) {
      expect(
        await waitFor(async () => {
          const s = (await api<Status>(endpoint, "GET", `/v1/vms/${name}`)).body;
          if (s.state === "starting" || s.state === "stopping") return false;
          const pids = await qemuPidsOf(s.id);
          return s.state === "running" || s.state === "paused"
            ? pids.includes(s.pid!) && pids.length === 1
            : pids.length === 0;
        }, 90_000),
      ).toBe(true);
    }
    // New events after the restart reach the followers too.
    for (const name of ["k-start", "k-stop"]) expect((await box.run(["stop", name, "--force"])).code).toBe(0);
    const all = (await storedEvents(endpoint)).map((e) => e.position);
    expect(await waitFor(async () => followers.every((f) => f.positions.length >= all.length), 60_000)).toBe(true);
    for (const f of followers) {
      f.stop.abort();
      expect(f.positions.slice(0, all.length)).toEqual(all);
      expect(new Set(f.positions).size).toBe(f.positions.length);
    }
    await Promise.all(runs);
  });

  async function agentRaw(method: string, path: string, body: string): Promise<{ status: number; body: string }> {
    const { request } = await import("node:http");
    return new Promise((resolve, reject) => {
      const req = request(
        { socketPath: agent.socket, method, path, headers: { "content-type": "application/json" } },
        (res) => {
          let text = "";
          res.on("data", (c: Buffer) => {
            text += c.toString();
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on("error", (e: NodeJS.ErrnoException) =>
        e.code === "EPIPE" || e.code === "ECONNRESET" ? undefined : reject(e),
      );
      req.end(body);
    });
  }
});
