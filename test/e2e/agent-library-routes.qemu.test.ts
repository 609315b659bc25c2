/**
 * The library methods with no CLI command of their own, through a real agent (src/agent/
 * library-routes.ts, src/client/remote-library-calls.ts): `replay`, `deliveryHold`, `configYaml`
 * and `replaceConfig` from the remote library give what the in-process ones give, with the
 * caller on the recorded facts; bad input is a clear 400; `maqet edit` with an agent reads and
 * saves the config through it (its log shows the two routes) instead of opening the store the
 * agent holds. Real agent process, PGlite, real QEMU (a firmware-only VM) for the restart case.
 */
import { lastValueFrom, toArray } from "rxjs";
import { describe, expect, it } from "vitest";
import type { AgentEndpoint } from "../../src/client/agent-transport.ts";
import { createMaqet } from "../../src/mod.ts";
import { agentForSuite, api, storedEvents } from "../support/agent-helpers.ts";
import type { CliSandbox, SandboxAgent } from "../support/cli-runner.ts";

interface Status {
  name: string;
  state: string;
  memory: string | null;
}

describe("library routes through the agent (replay, deliveryHold, configYaml, replaceConfig)", {
  timeout: 600_000,
}, () => {
  let box: CliSandbox;
  let agent: SandboxAgent;
  let endpoint: AgentEndpoint;
  agentForSuite(
    (s) => ({ box, agent, endpoint } = s),
    async () => void (await api(endpoint, "POST", "/v1/vms/lib/stop", { force: true })),
  );

  it("the remote client: configYaml, replaceConfig (caller recorded), replay, deliveryHold", async () => {
    const maqet = createMaqet({ agent: agent.socket, source: "lib-test", env: { USER: "lib-user" } });
    await maqet.add({ name: "lib", accel: "tcg", memory: "32M" });

    const yaml = await maqet.configYaml("lib");
    expect(yaml).toMatch(/^# maqet config of VM 'lib'/);
    expect(yaml).toMatch(/^memory: 32M$/m);
    const changed = await maqet.replaceConfig("lib", yaml.replace(/^memory: .*$/m, "memory: 48M"), {
      reason: "more room",
    });
    expect(changed).toMatchObject({ changed: ["memory"], created: false, restarted: false, vm: { memory: "48M" } });
    const reconfigured = (await storedEvents(endpoint, "lib")).at(-1)!;
    expect(reconfigured).toMatchObject({
      type: "vm.reconfigured",
      source: "lib-test",
      actor: { user: "lib-user" },
      data: { via: "library", reason: "more room", changed: ["memory"] },
    });

    // replay: one step per event, the state after each, as history and historyAt see them.
    const steps = await lastValueFrom(maqet.replay("lib").pipe(toArray()));
    const history = await maqet.history("lib");
    expect(steps.map((s) => s.event.type)).toEqual(history.map((e) => e.type));
    expect(steps.map((s) => s.event.type)).toEqual(["vm.defined", "vm.reconfigured"]);
    expect(steps[0]!.state).toMatchObject({ name: "lib", memory: "32M" });
    expect(steps[1]!.state).toMatchObject({ name: "lib", memory: "48M" });
    const first = await lastValueFrom(maqet.replay("lib", { version: 0 }).pipe(toArray()));
    expect(first.map((s) => s.event.type)).toEqual(["vm.defined"]);
    const untilDefined = await lastValueFrom(
      maqet.replay("lib", { until: new Date(steps[0]!.event.at) }).pipe(toArray()),
    );
    expect(untilDefined.at(-1)!.event.version).toBeLessThan(steps[1]!.event.version);

    // deliveryHold: the watermark and what it holds; the embedded store has no other session.
    const hold = await maqet.deliveryHold();
    expect(hold.heldEvents).toBe(0);
    expect(hold).toHaveProperty("watermark");
    expect(hold).toHaveProperty("holder");
    if (hold.holder?.since) expect(hold.holder.since).toBeInstanceOf(Date);

    // Errors travel with their codes.
    await expect(lastValueFrom(maqet.replay("nope").pipe(toArray()))).rejects.toMatchObject({ code: "VM_NOT_FOUND" });
    await expect(maqet.configYaml("nope")).rejects.toMatchObject({ code: "VM_NOT_FOUND", exitCode: 3 });
    await expect(maqet.replaceConfig("lib", yaml.replace(/^name: lib$/m, "name: other"))).rejects.toMatchObject({
      code: "CONFIG_INVALID",
    });
    await maqet.close();
    await expect(maqet.configYaml("lib")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("bad requests to the library routes are clear 400/405 answers that record nothing", async () => {
    const before = (await storedEvents(endpoint, "lib")).length;
    const cases: Array<[string, string, unknown, number, RegExp]> = [
      ["GET", "/v1/vms/lib/replay?bogus=1", undefined, 400, /unknown field 'bogus'/],
      ["GET", "/v1/vms/lib/replay?until=yesterday", undefined, 400, /'until' must be an ISO 8601 time/],
      ["GET", "/v1/vms/lib/replay?version=-1", undefined, 400, /'version' must be a stream version/],
      ["GET", "/v1/events/hold?vm=lib", undefined, 400, /unknown field 'vm'/],
      ["PUT", "/v1/vms/lib/config", {}, 400, /'yaml' must be the config's YAML text/],
      ["PUT", "/v1/vms/lib/config", { yaml: "memory: 64M\n", force: true }, 400, /unknown field 'force'/],
      ["PUT", "/v1/vms/lib/config", { yaml: "memory: 64M\n", timeout: 0 }, 400, /'timeout' must be/],
      [
        "PUT",
        "/v1/vms/lib/config",
        { yaml: "memory: 64M\n", baseDir: "rel" },
        400,
        /'baseDir' must be an absolute directory/,
      ],
      ["POST", "/v1/vms/lib/config", {}, 405, /this path takes GET, PUT/],
      ["PUT", "/v1/vms/nope/config", { yaml: "memory: 64M\n" }, 404, /VM 'nope' not found/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const r = await api<{ error: { code: string; message: string } }>(endpoint, method, path, body);
      expect(r.status, `${method} ${path}`).toBe(status);
      expect(r.body.error.message, `${method} ${path}`).toMatch(message);
    }
    expect((await storedEvents(endpoint, "lib")).length).toBe(before);
  });

  it("a running VM: replaceConfig is refused without restart; with restart it stops, applies and starts again", async () => {
    const maqet = createMaqet({ agent: agent.socket, source: "lib-test" });
    await maqet.start("lib");
    const yaml = await maqet.configYaml("lib");
    const bigger = yaml.replace(/^memory: .*$/m, "memory: 64M");
    await expect(maqet.replaceConfig("lib", bigger)).rejects.toMatchObject({ code: "VM_INVALID_STATE" });
    const restarted = await maqet.replaceConfig("lib", bigger, { restart: true, stopTimeoutMs: 1000 });
    expect(restarted).toMatchObject({ changed: ["memory"], restarted: true, vm: { state: "running", memory: "64M" } });
    await maqet.stop("lib", { force: true });
    await maqet.close();
  });

  it("`maqet edit` with an agent running reads and saves the config through it", async () => {
    const edit = await box.run(["edit", "lib", "--reason", "by hand", "--json"], {
      EDITOR: `sed -i -e "s/^memory: .*/memory: 40M/"`,
    });
    expect(edit.stderr).toBe("");
    expect(edit.code).toBe(0);
    expect(edit.json<{ changed: string[]; vm: Status }>()).toMatchObject({
      changed: ["memory"],
      vm: { memory: "40M" },
    });
    const last = (await storedEvents(endpoint, "lib")).at(-1)!;
    expect(last).toMatchObject({ type: "vm.reconfigured", source: "cli", data: { via: "edit", reason: "by hand" } });
    const log = agent.log();
    expect(log).toMatch(/"method":"GET","path":"\/v1\/vms\/lib\/config","status":200/);
    expect(log).toMatch(/"method":"PUT","path":"\/v1\/vms\/lib\/config","status":200/);
  });
});
