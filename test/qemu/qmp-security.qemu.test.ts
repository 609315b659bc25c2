/**
 * QMP tiers, allow-lists and helpers against real QEMU (issue 5, acceptance 1 and 5): refused
 * commands throw QMP_REFUSED (exit 4), are recorded as qmp.command-rejected, and never reach
 * QEMU — proved QEMU-side: the run state stays `running` although the refused command would
 * have paused it. keys and type are proved by QEMU's own input trace (qemu.log), screendump by
 * the file's magic bytes, device-add/del by QEMU's QOM tree.
 */
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { QmpRules } from "../../src/config/qmp-rules.ts";
import type { Maqet, MaqetError, StoredEvent } from "../../src/mod.ts";
import { waitFor } from "../support/cli-runner.ts";
import { firmwareVmYaml } from "../support/firmware-vm.ts";
import { maqetForSuite } from "../support/library-maqet.ts";

const vm = firmwareVmYaml;

async function refused(p: Promise<unknown>): Promise<MaqetError> {
  const error = (await p.then(
    () => {
      throw new Error("expected QMP_REFUSED");
    },
    (e) => e,
  )) as MaqetError;
  expect(error, String(error)).toBeMaqetError("QMP_REFUSED");
  expect(error.exitCode).toBe(4);
  return error;
}

describe("QMP security tiers and helpers (real QEMU)", { timeout: 60_000 }, () => {
  let dir: string;
  let maqet: Maqet;
  let globalRules: QmpRules | undefined;
  const seen: StoredEvent[] = [];
  const runState = async (name: string) => ((await maqet.qmp(name, "query-status")) as { status: string }).status;

  maqetForSuite("maqet-qmpsec-", (s) => ({ dir, maqet } = s), { qmpPolicy: () => globalRules });
  beforeAll(async () => {
    maqet.events$.subscribe((e) => seen.push(e));
    await writeFile(
      join(dir, "sec.yaml"),
      vm("sec", "args: [-device, VGA, -device, 'qemu-xhci,id=xhci', -trace, input_event_key_qcode]\n"),
    );
    await writeFile(
      join(dir, "locked.yaml"),
      vm("locked", "qmp:\n  allow: [query-*, cont]\n  deny: [query-cpus-fast]\n"),
    );
    await writeFile(join(dir, "blind.yaml"), vm("blind", "args: [-nodefaults]\n"));
    for (const name of ["sec", "locked", "blind"]) {
      await maqet.add(join(dir, `${name}.yaml`));
      await maqet.start(name);
    }
  });

  const rejections = () => seen.filter((e) => e.type === "qmp.command-rejected").map((e) => e.data);
  const executed = (command: string) =>
    seen.filter((e) => e.type === "qmp.command-executed" && (e.data as { command: string }).command === command);

  it("dangerous: refused without --allow-dangerous, recorded, never reaches QEMU", async () => {
    const error = await refused(maqet.qmp("sec", "human-monitor-command", { "command-line": "stop" }));
    expect(error.details).toMatchObject({ tier: "dangerous", rule: "tier:dangerous" });
    expect(await runState("sec")).toBe("running"); // HMP `stop` would have paused it
    expect(executed("human-monitor-command")).toEqual([]);
    await waitFor(async () => rejections().length >= 1, 2000);
    expect(rejections().at(-1)).toMatchObject({
      command: "human-monitor-command",
      tier: "dangerous",
      rule: "tier:dangerous",
      vm: "sec",
      argumentNames: ["command-line"],
    });
    expect(JSON.stringify(seen)).not.toContain('"stop"}');
  });

  it("the check runs before the VM lookup: a refusal even for a VM that does not exist", async () => {
    await refused(maqet.qmp("no-such-vm", "inject-nmi"));
    await waitFor(async () => rejections().some((r) => (r as { vm: string }).vm === "no-such-vm"), 2000);
    // An allowed command for an unknown VM is a plain not-found.
    const notFound = await maqet.qmp("no-such-vm", "query-status").catch((e) => e);
    expect(notFound).toBeMaqetError("VM_NOT_FOUND");
  });

  it("dangerous with allowDangerous: runs (QEMU pauses), the VM is tainted, status shows it", async () => {
    await maqet.qmp("sec", "human-monitor-command", { "command-line": "stop" }, { allowDangerous: true });
    expect(await waitFor(async () => (await maqet.status("sec")).state === "paused", 3000)).toBe(true);
    expect(await runState("sec")).toBe("paused");
    await maqet.qmp("sec", "inject-nmi", undefined, { allowDangerous: true });
    await maqet.qmp("sec", "cont");
    expect(await waitFor(async () => (await maqet.status("sec")).state === "running", 3000)).toBe(true);
    const status = await maqet.status("sec");
    expect(status.tainted).toMatchObject({ reason: "custom-monitor", command: "human-monitor-command" });
    expect((await maqet.list()).find((v) => v.name === "sec")!.tainted).not.toBeNull();
    const types = (await maqet.history("sec")).map((h) => h.type);
    expect(types.filter((t) => t === "vm.tainted")).toHaveLength(1); // once per run
    expect(types.indexOf("vm.tainted")).toBeLessThan(types.lastIndexOf("qmp.command-executed"));
    const hmp = (await maqet.history("sec")).find(
      (h) => h.type === "qmp.command-executed" && (h.data as { command: string }).command === "human-monitor-command",
    )!;
    expect(hmp.data).toMatchObject({ tier: "dangerous", rule: "allow-dangerous", argumentNames: ["command-line"] });
    expect(hmp.data).not.toHaveProperty("arguments"); // HMP command lines may hold secrets
  });

  it("privileged and memory-dump: allowed and recorded with their tier; memory-dump values are on the safe list", async () => {
    await maqet.qmp("sec", "system_reset");
    const file = join(dir, "mem.bin");
    await maqet.qmp("sec", "pmemsave", { val: 0, size: 4096, filename: file });
    expect((await stat(file)).size).toBe(4096);
    const history = await maqet.history("sec");
    const data = (command: string) =>
      history
        .filter((h) => h.type === "qmp.command-executed")
        .find((h) => (h.data as { command: string }).command === command)!.data;
    expect(data("system_reset")).toMatchObject({ tier: "privileged", rule: "tier:privileged", outcome: "ok" });
    expect(data("pmemsave")).toMatchObject({
      tier: "memory-dump",
      rule: "tier:memory-dump",
      arguments: { val: 0, size: 4096, filename: file },
    });
    expect(data("query-status")).toMatchObject({ tier: "safe", rule: "tier:safe" });
  });

  it("VM allow-list: a command outside it is refused and recorded with the rule; QEMU stays running", async () => {
    const error = await refused(maqet.qmp("locked", "stop"));
    expect(error.details.rule).toBe("vm:allow");
    expect(error.message).toContain("query-*, cont");
    expect(await runState("locked")).toBe("running");
    const denied = await refused(maqet.qmp("locked", "query-cpus-fast"));
    expect(denied.details.rule).toBe("vm:deny:query-cpus-fast");
    await waitFor(async () => rejections().filter((r) => (r as { vm: string }).vm === "locked").length >= 2, 2000);
    expect(rejections().filter((r) => (r as { vm: string }).vm === "locked")).toEqual([
      expect.objectContaining({ command: "stop", rule: "vm:allow", vmId: expect.any(String) }),
      expect.objectContaining({ command: "query-cpus-fast", rule: "vm:deny:query-cpus-fast" }),
    ]);
    const ok = (await maqet.history("locked")).filter((h) => h.type === "qmp.command-executed").at(-1)!;
    expect(ok.data).toMatchObject({ command: "query-status", rule: "vm:allow:query-*" });
  });

  it("global allow/deny: refuses for every VM, before the lookup", async () => {
    globalRules = { deny: ["stop", "@memory-dump"] };
    try {
      expect((await refused(maqet.qmp("sec", "stop"))).details.rule).toBe("global:deny:stop");
      expect((await refused(maqet.qmp("ghost", "memsave"))).details.rule).toBe("global:deny:@memory-dump");
      expect(await runState("sec")).toBe("running");
      globalRules = { allow: ["query-status"] };
      expect((await refused(maqet.qmp("sec", "query-version"))).details.rule).toBe("global:allow");
      expect(await runState("sec")).toBe("running");
    } finally {
      globalRules = undefined;
    }
  });

  it("keys and type: QEMU's input trace shows exactly the keys sent", async () => {
    const log = join((await maqet.status("sec")).runtimeDir!, "qemu.log");
    const traced = async () =>
      [...(await readFile(log, "utf8")).matchAll(/input_event_key_qcode con -?\d+, key qcode (\w+), down 1/g)].map(
        (m) => m[1],
      );
    const before = (await traced()).length;
    expect(await maqet.sendKeys("sec", ["ctrl-alt", "delete"], { holdTimeMs: 10 })).toEqual({
      vm: "sec",
      keys: ["ctrl", "alt", "delete"],
    });
    await maqet.typeText("sec", "Hi!", { holdTimeMs: 10 });
    const expected = ["ctrl", "alt", "delete", "shift", "h", "i", "shift", "1"];
    expect(await waitFor(async () => (await traced()).length >= before + expected.length, 3000)).toBe(true);
    expect((await traced()).slice(before)).toEqual(expected);
    const bad = await maqet.typeText("sec", "héllo").catch((e) => e);
    expect(bad).toBeMaqetError("INVALID_ARGUMENT");
    expect(bad.message).toContain('"é"');
    await new Promise((r) => setTimeout(r, 200));
    expect((await traced()).length).toBe(before + expected.length); // nothing of "héllo" was sent
    expect(executed("send-key").length).toBe(4);
  });

  it("screendump: PPM and PNG with a VGA device; a VM without a display says so", async () => {
    const ppm = await maqet.screendump("sec", join(dir, "shot.ppm"));
    expect(ppm.format).toBe("ppm");
    expect((await readFile(ppm.file)).subarray(0, 2).toString()).toBe("P6");
    const png = await maqet.screendump("sec", join(dir, "shot.png"));
    expect(png.format).toBe("png");
    expect([...(await readFile(png.file)).subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    const blind = await maqet.screendump("blind", join(dir, "blind.ppm")).catch((e) => e);
    expect(blind).toBeMaqetError("QMP_ERROR");
    expect(blind.message).toMatch(/no display device/);
    expect(blind.message).toContain("-device, VGA");
  });

  it("device-add / device-del: a USB keyboard appears in and leaves QEMU's device tree", async () => {
    const peripherals = async () =>
      ((await maqet.qmp("sec", "qom-list", { path: "/machine/peripheral" })) as Array<{ name: string }>).map(
        (p) => p.name,
      );
    expect(await maqet.deviceAdd("sec", "usb-kbd", "kbd1", { bus: "xhci.0" })).toEqual({
      vm: "sec",
      driver: "usb-kbd",
      id: "kbd1",
    });
    expect(await peripherals()).toContain("kbd1");
    await maqet.deviceDel("sec", "kbd1");
    expect(await waitFor(async () => !(await peripherals()).includes("kbd1"), 3000)).toBe(true);
    const history = (await maqet.history("sec")).filter((h) => h.type === "qmp.command-executed");
    expect(history.find((h) => (h.data as { command: string }).command === "device_add")!.data).toMatchObject({
      tier: "safe",
      argumentNames: ["driver", "id", "bus"],
    });
    expect(history.find((h) => (h.data as { command: string }).command === "device_del")!.data).toMatchObject({
      tier: "privileged",
      arguments: { id: "kbd1" },
    });
    const missing = await maqet.deviceDel("sec", "kbd1").catch((e) => e);
    expect(missing).toBeMaqetError("QMP_ERROR");
  });
});
