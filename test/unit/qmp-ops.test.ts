/**
 * The QMP facade with fakes: the policy runs before the VM lookup, refusals are recorded in the
 * qmp-rejections stream and never reach QEMU, allowed commands carry tier and rule, a dangerous
 * one taints the VM, and the helpers build the right QMP calls.
 */
import { describe, expect, it } from "vitest";
import { createMaqet } from "../../src/api/maqet.ts";
import type { MaqetError } from "../../src/errors/maqet-error.ts";
import { createFakeWorld, type FakeSession } from "../support/fake-ports.ts";
import { MemoryEventStore } from "../support/memory-event-store.ts";

async function setup(options: { qmpPolicy?: { allow?: string[]; deny?: string[] }; vmQmp?: unknown } = {}) {
  const world = createFakeWorld();
  const store = new MemoryEventStore();
  const maqet = createMaqet({ store, ports: world.ports, qmpPolicy: options.qmpPolicy });
  await maqet.add({ name: "web", accel: "tcg", ...(options.vmQmp ? { qmp: options.vmQmp } : {}) });
  await maqet.start("web");
  const qemu = world.qemus[0]!;
  // The fake QEMU knows a handful of commands; accept the ones the helpers send.
  const session = qemu.sessions.at(-1) as FakeSession;
  const sent: Array<{ command: string; args?: Record<string, unknown> }> = [];
  const original = session.execute.bind(session);
  session.execute = (async (command: string, args?: Record<string, unknown>) => {
    sent.push({ command, args });
    if (
      ["send-key", "screendump", "device_add", "device_del", "inject-nmi", "human-monitor-command"].includes(command)
    ) {
      qemu.executed.push(command);
      return command === "human-monitor-command" ? "" : {};
    }
    return original(command);
  }) as typeof session.execute;
  return { world, store, maqet, qemu, sent };
}

const refusal = async (p: Promise<unknown>) => {
  const error = await p.then(
    () => undefined,
    (e) => e,
  );
  expect(error).toBeMaqetError("QMP_REFUSED");
  expect(error.exitCode).toBe(4);
  return error;
};

describe("QMP policy through the facade (fakes)", () => {
  it("refuses a dangerous command even for a VM that does not exist, and records it", async () => {
    const { store, maqet } = await setup();
    const before = store.events.length;
    const error = await refusal(maqet.qmp("ghost", "human-monitor-command", { "command-line": "info status" }));
    expect(error.message).toContain("--allow-dangerous");
    expect(store.events.length).toBe(before + 1);
    const rejected = store.events.at(-1)!;
    expect(rejected.streamId).toBe("qmp-rejections");
    expect(rejected.type).toBe("qmp.command-rejected");
    expect(rejected.data).toEqual({
      command: "human-monitor-command",
      tier: "dangerous",
      rule: "tier:dangerous",
      vm: "ghost",
      argumentNames: ["command-line"],
    });
    expect(JSON.stringify(rejected)).not.toContain("info status");
    expect(rejected.metadata.correlationId).toEqual(expect.any(String));
  });

  it("a refused command never reaches QEMU nor the VM's stream", async () => {
    const { store, maqet, qemu } = await setup();
    const executed = [...qemu.executed];
    const vmEvents = store.types(store.events.find((e) => e.type === "vm.defined")!.streamId);
    await refusal(maqet.qmp("web", "inject-nmi"));
    expect(qemu.executed).toEqual(executed);
    expect(store.types(store.events.find((e) => e.type === "vm.defined")!.streamId)).toEqual(vmEvents);
  });

  it("a malformed name is invalid input (exit 3), decided before the store opens", async () => {
    const maqet = createMaqet({ store: new MemoryEventStore(), ports: createFakeWorld().ports });
    const error = (await maqet.qmp("ghost", "Query;rm").catch((e) => e)) as MaqetError;
    expect(error).toBeMaqetError("INVALID_ARGUMENT");
    expect(error.exitCode).toBe(3);
  });

  it("an allowed dangerous command taints the VM once per run; status shows it; the next start clears it", async () => {
    const { store, maqet } = await setup();
    await maqet.qmp("web", "inject-nmi", undefined, { allowDangerous: true });
    await maqet.qmp("web", "human-monitor-command", { "command-line": "info mtree" }, { allowDangerous: true });
    const types = store.types().slice(-3);
    expect(types).toEqual(["vm.tainted", "qmp.command-executed", "qmp.command-executed"]);
    const executed = store.events.filter((e) => e.type === "qmp.command-executed").map((e) => e.data);
    expect(executed[0]).toMatchObject({ command: "inject-nmi", tier: "dangerous", rule: "allow-dangerous" });
    expect(executed[1]).toMatchObject({ argumentNames: ["command-line"] });
    expect(executed[1]).not.toHaveProperty("arguments");
    const status = await maqet.status("web");
    expect(status.tainted).toMatchObject({ reason: "custom-monitor", command: "inject-nmi" });
    expect((await maqet.list())[0]!.tainted).not.toBeNull();
    await maqet.stop("web");
    expect((await maqet.status("web")).tainted).not.toBeNull();
    await maqet.start("web");
    expect((await maqet.status("web")).tainted).toBeNull();
  });

  it("records the tier of privileged and safe commands, and values only for the safe list", async () => {
    const { store, maqet } = await setup();
    await maqet.qmp("web", "system_reset");
    await maqet.qmp("web", "query-status");
    await maqet.screendump("web", "/tmp/maqet-unit-shot.ppm");
    const executed = store.events.filter((e) => e.type === "qmp.command-executed").map((e) => e.data);
    expect(executed[0]).toMatchObject({ command: "system_reset", tier: "privileged", rule: "tier:privileged" });
    expect(executed[1]).toMatchObject({ command: "query-status", tier: "safe", rule: "tier:safe" });
    expect(executed[2]).toMatchObject({ command: "screendump", arguments: { filename: "/tmp/maqet-unit-shot.ppm" } });
  });

  it("global rules are checked before the lookup; the VM's rules after it; both recorded with the rule", async () => {
    const { store, maqet, qemu } = await setup({
      qmpPolicy: { deny: ["system_reset"] },
      vmQmp: { allow: ["query-*", "send-key"] },
    });
    const executed = [...qemu.executed];
    const e1 = await refusal(maqet.qmp("nope", "system_reset"));
    expect(e1.details.rule).toBe("global:deny:system_reset");
    const e2 = await refusal(maqet.qmp("web", "screendump", { filename: "/tmp/x.ppm" }));
    expect(e2.details.rule).toBe("vm:allow");
    expect(qemu.executed).toEqual(executed);
    const rejections = store.events.filter((e) => e.type === "qmp.command-rejected").map((e) => e.data);
    expect(rejections).toEqual([
      expect.objectContaining({ command: "system_reset", rule: "global:deny:system_reset", vm: "nope" }),
      expect.objectContaining({ command: "screendump", rule: "vm:allow", vm: "web", vmId: expect.any(String) }),
    ]);
    await maqet.qmp("web", "query-status");
    expect(store.events.at(-1)!.data).toMatchObject({ rule: "vm:allow:query-*" });
  });

  it("a policy function that throws blocks the command", async () => {
    const world = createFakeWorld();
    const maqet = createMaqet({
      store: new MemoryEventStore(),
      ports: world.ports,
      qmpPolicy: () => {
        throw new Error("broken policy file");
      },
    });
    await expect(maqet.qmp("web", "query-status")).rejects.toThrow("broken policy file");
  });
});

describe("QMP helpers (fakes)", () => {
  it("keys: one send-key chord with qcodes and hold-time", async () => {
    const { maqet, sent } = await setup();
    const result = await maqet.sendKeys("web", ["ctrl-alt", "delete"], { holdTimeMs: 50 });
    expect(result.keys).toEqual(["ctrl", "alt", "delete"]);
    expect(sent.at(-1)).toEqual({
      command: "send-key",
      args: {
        keys: [
          { type: "qcode", data: "ctrl" },
          { type: "qcode", data: "alt" },
          { type: "qcode", data: "delete" },
        ],
        "hold-time": 50,
      },
    });
    await expect(maqet.sendKeys("web", ["ctrl", "hyper"])).rejects.toThrow(/Unknown key 'hyper'/);
  });

  it("type: one send-key per character with shift; an unsupported character sends nothing", async () => {
    const { maqet, sent, store } = await setup();
    await maqet.typeText("web", "Hi! a\n");
    const chords = sent.map((s) => (s.args!.keys as Array<{ data: string }>).map((k) => k.data));
    expect(chords).toEqual([["shift", "h"], ["i"], ["shift", "1"], ["spc"], ["a"], ["ret"]]);
    const correlation = new Set(
      store.events.filter((e) => e.type === "qmp.command-executed").map((e) => e.metadata.correlationId),
    );
    expect(correlation.size).toBe(1);
    const count = sent.length;
    const error = await maqet.typeText("web", "naïve").catch((e) => e);
    expect(error).toBeMaqetError("INVALID_ARGUMENT");
    expect(error.message).toContain('"ï"');
    expect(error.message).toContain("U+00EF");
    expect(sent.length).toBe(count);
  });

  it("device-add and device-del build device_add / device_del; device_del is privileged", async () => {
    const { maqet, sent, store } = await setup();
    await maqet.deviceAdd("web", "usb-kbd", "kbd1", { bus: "xhci.0", port: "1" });
    await maqet.deviceDel("web", "kbd1");
    expect(sent.slice(-2)).toEqual([
      { command: "device_add", args: { driver: "usb-kbd", id: "kbd1", bus: "xhci.0", port: "1" } },
      { command: "device_del", args: { id: "kbd1" } },
    ]);
    expect(store.events.at(-1)!.data).toMatchObject({ tier: "privileged", arguments: { id: "kbd1" } });
    await expect(maqet.deviceAdd("web", "usb-kbd", "1bad")).rejects.toThrow(/Invalid device id/);
  });

  it("screendump picks PNG from the file name and refuses system directories", async () => {
    const { maqet, sent } = await setup();
    const result = await maqet.screendump("web", "/tmp/maqet-unit.png");
    expect(result).toEqual({ vm: "web", file: "/tmp/maqet-unit.png", format: "png" });
    expect(sent.at(-1)!.args).toEqual({ filename: "/tmp/maqet-unit.png", format: "png" });
    const error = await maqet.screendump("web", "/etc/shot.ppm").catch((e) => e);
    expect(error).toBeMaqetError("PATH_REFUSED");
  });
});
