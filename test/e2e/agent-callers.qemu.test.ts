/**
 * The agent serving many callers at once, and the remote library (Node and Deno): issue 10's
 * acceptance items 5 (50 concurrent API clients on 10 VMs: every appended event carries its own
 * caller and correlation id) and 7 (the remote library, under Node and Deno). A real agent
 * process, real QEMU (firmware-only VMs), PGlite.
 */
import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";
import type { AgentEndpoint } from "../../src/client/agent-transport.ts";
import { createMaqet } from "../../src/mod.ts";
import { agentForSuite, api, storedEvents } from "../support/agent-helpers.ts";
import { projectRoot } from "../support/build-dist.ts";
import type { CliSandbox, SandboxAgent } from "../support/cli-runner.ts";
import { waitUntil } from "../support/poll.ts";

const VMS = Array.from({ length: 10 }, (_, i) => `c${i}`);

describe("the agent with many callers, and the remote library", { timeout: 600_000 }, () => {
  let box: CliSandbox;
  let agent: SandboxAgent;
  let endpoint: AgentEndpoint;
  agentForSuite(
    (s) => ({ box, agent, endpoint } = s),
    async () => {
      for (const vm of [...VMS, "remote-node", "deno-remote"])
        await api(endpoint, "POST", `/v1/vms/${vm}/stop`, { force: true });
    },
  );

  it("50 concurrent API clients on 10 VMs: every event carries its own caller and correlation id", async (ctx) => {
    const version = await api<{ extensions: string[] }>(endpoint, "GET", "/v1/version");
    ctx.skip(
      !version.body.extensions.includes("per-operation-caller"),
      "the core has no maqet.as(caller) yet (the supervise helper's work): events would carry the agent's own metadata",
    );
    for (const vm of VMS) {
      const r = await api(endpoint, "POST", "/v1/vms", { config: { name: vm, accel: "tcg", memory: "32M" } });
      expect(r.status).toBe(201);
    }
    const client = (n: number) => ({
      "maqet-user": `client-${n}`,
      "maqet-uid": String(5000 + n),
      "maqet-pid": String(100000 + n),
      "maqet-source": "load-test",
      "maqet-correlation-id": `corr-${n}`,
    });
    // Clients 0-9 start one VM each; 10-49 then run QMP on them, 4 per VM, all at once.
    const starts = await Promise.all(VMS.map((vm, n) => api(endpoint, "POST", `/v1/vms/${vm}/start`, {}, client(n))));
    for (const s of starts) expect(s.status).toBe(200);
    const queries = await Promise.all(
      Array.from({ length: 40 }, (_, k) =>
        api(endpoint, "POST", `/v1/vms/${VMS[k % 10]}/qmp`, { command: "query-status" }, client(10 + k)),
      ),
    );
    for (const q of queries) expect(q.status).toBe(200);
    const events = (await storedEvents(endpoint)).filter((e) => e.correlationId?.startsWith("corr-"));
    const byClient = new Map<string, number>();
    for (const e of events) {
      const n = Number(e.correlationId!.slice(5));
      expect(e.actor, `${e.type} of corr-${n}`).toMatchObject({ user: `client-${n}`, pid: 100000 + n });
      expect(e.source).toBe("load-test");
      byClient.set(e.correlationId!, (byClient.get(e.correlationId!) ?? 0) + 1);
      if (n < 10) expect(e.vm).toBe(VMS[n]);
      else expect(e.vm).toBe(VMS[(n - 10) % 10]);
    }
    // Every one of the 50 operations appended events, each under its own id.
    expect(byClient.size).toBe(50);
    for (let n = 10; n < 50; n++) {
      expect(events.filter((e) => e.correlationId === `corr-${n}`).map((e) => e.type)).toEqual([
        "qmp.command-executed",
      ]);
    }
  });

  it("the remote library (Node): the Maqet interface over the agent, events$ included, no store opened", async () => {
    const maqet = createMaqet({ agent: agent.socket, source: "remote-test", env: { USER: "remote-user" } });
    const types: string[] = [];
    let live!: () => void;
    const caughtUp = new Promise<void>((resolve) => (live = resolve));
    const sub = maqet.subscribe({ vm: undefined, from: "end" }).subscribe((m) => {
      if (m.kind === "caughtUp") live();
      if (m.kind === "event" && m.vmName === "remote-node") types.push(m.event.type);
    });
    // "end" is the end when the stream opens (over the network, after this line): act once it is live.
    await caughtUp;
    await maqet.add({ name: "remote-node", accel: "tcg", memory: "32M" });
    const started = await maqet.start("remote-node");
    expect(started).toMatchObject({ name: "remote-node", state: "running" });
    expect(await maqet.qmp<{ status: string }>("remote-node", "query-status")).toMatchObject({ status: "running" });
    expect((await maqet.list()).map((v) => v.name)).toContain("remote-node");
    await expect(maqet.status("nope")).rejects.toMatchObject({ code: "VM_NOT_FOUND", exitCode: 3 });
    await maqet.stop("remote-node", { force: true });
    await waitUntil(
      "vm.stopped of remote-node on the subscription",
      () => [...types],
      (seen) => seen.includes("vm.stopped"),
      {
        timeoutMs: 60_000,
      },
    );
    sub.unsubscribe();
    await maqet.close();
    expect(types).toEqual(
      expect.arrayContaining(["vm.defined", "vm.start-requested", "vm.started", "qmp.command-executed", "vm.stopped"]),
    );
    const history = (await storedEvents(endpoint, "remote-node")).map((e) => e.source);
    expect(history.every((s) => s === "remote-test" || s === "agent")).toBe(true);
  });

  it("the remote library under Deno (test/deno/remote.ts)", { timeout: 300_000 }, async () => {
    const r = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(
        "npx",
        ["--yes", "deno@2.9.6", "run", "-A", "test/deno/remote.ts"],
        { cwd: projectRoot, timeout: 280_000, env: { ...process.env, NO_COLOR: "1", MAQET_AGENT: agent.socket } },
        (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, out: `${stdout}\n${stderr}` }),
      );
    });
    expect(r.out).toMatch(
      /deno remote: ok vm\.defined,vm\.start-requested,.*vm\.started,.*qmp\.command-executed,.*vm\.stopped/,
    );
    expect(r.code).toBe(0);
  });
});
