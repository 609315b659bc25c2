import { describe, expect, it } from "vitest";
import { decideQmp, qmpRefusedError } from "../../src/actors/qmp-policy.ts";
import { parseGlobalConfig } from "../../src/config/parse-global-config.ts";
import { parseVmConfig } from "../../src/config/parse-vm-config.ts";
import { parseQmpRules } from "../../src/config/qmp-rules.ts";
import { asQmpEvent, qmpTierOf } from "../../src/events/qmp-events.ts";
import { asVmEvent } from "../../src/events/vm-events.ts";
import { errorOf } from "../support/failure.ts";

describe("QMP tiers", () => {
  it("classifies MAQET's lists and calls everything else safe", () => {
    expect(qmpTierOf("human-monitor-command")).toBe("dangerous");
    expect(qmpTierOf("inject-nmi")).toBe("dangerous");
    for (const c of ["system_powerdown", "system_reset", "quit", "device_del", "blockdev-del"]) {
      expect(qmpTierOf(c)).toBe("privileged");
    }
    expect(qmpTierOf("pmemsave")).toBe("memory-dump");
    expect(qmpTierOf("memsave")).toBe("memory-dump");
    expect(qmpTierOf("query-status")).toBe("safe");
    expect(qmpTierOf("no-such-command")).toBe("safe");
  });
});

describe("decideQmp", () => {
  it("refuses dangerous commands unless allowed, and marks an allowed one for taint", () => {
    expect(decideQmp("human-monitor-command")).toMatchObject({
      allowed: false,
      tier: "dangerous",
      rule: "tier:dangerous",
      taint: false,
    });
    expect(decideQmp("inject-nmi").reason).toContain("--allow-dangerous");
    expect(decideQmp("inject-nmi", { allowDangerous: true })).toMatchObject({
      allowed: true,
      rule: "allow-dangerous",
      taint: true,
    });
  });

  it("allows privileged, memory-dump and safe commands by the default policy, naming the tier", () => {
    expect(decideQmp("quit")).toMatchObject({
      allowed: true,
      tier: "privileged",
      rule: "tier:privileged",
      taint: false,
    });
    expect(decideQmp("pmemsave")).toMatchObject({ allowed: true, tier: "memory-dump", rule: "tier:memory-dump" });
    expect(decideQmp("query-status")).toMatchObject({ allowed: true, tier: "safe", rule: "tier:safe" });
  });

  it("throws INVALID_ARGUMENT for a malformed name (not a decision)", () => {
    for (const bad of ["Query", "-x", "a b", "", "query;rm", "x/y"]) {
      const error = errorOf(() => decideQmp(bad));
      expect(error).toBeMaqetError("INVALID_ARGUMENT");
    }
  });

  it("global deny, then global allow, then tier, then the VM's deny and allow; the rule names the entry", () => {
    const global = { allow: ["query-*", "send-key", "@privileged", "human-monitor-command"], deny: ["quit"] };
    expect(decideQmp("quit", { global })).toMatchObject({ allowed: false, rule: "global:deny:quit" });
    expect(decideQmp("screendump", { global })).toMatchObject({ allowed: false, rule: "global:allow" });
    expect(decideQmp("screendump", { global }).reason).toContain("query-*, send-key");
    expect(decideQmp("query-status", { global })).toMatchObject({ allowed: true, rule: "global:allow:query-*" });
    expect(decideQmp("system_reset", { global })).toMatchObject({ allowed: true, rule: "global:allow:@privileged" });
    // An allow entry never lets a dangerous command through on its own.
    expect(decideQmp("human-monitor-command", { global })).toMatchObject({ allowed: false, rule: "tier:dangerous" });
    const vm = { deny: ["query-cpus-fast"], allow: ["query-status", "query-cpus-fast"] };
    expect(decideQmp("query-cpus-fast", { global, vm, vmName: "web" })).toMatchObject({
      allowed: false,
      rule: "vm:deny:query-cpus-fast",
    });
    expect(decideQmp("query-version", { global, vm })).toMatchObject({ allowed: false, rule: "vm:allow" });
    expect(decideQmp("query-status", { global, vm })).toMatchObject({ allowed: true, rule: "vm:allow:query-status" });
    expect(decideQmp("query-status", { vm: { allow: [] } })).toMatchObject({ allowed: false, rule: "vm:allow" });
    expect(decideQmp("query-status", { vm: { deny: ["*"] } })).toMatchObject({ allowed: false, rule: "vm:deny:*" });
  });
});

describe("qmp: rules in configs", () => {
  it("a VM config takes a qmp section (no longer refused as a command name)", () => {
    const config = parseVmConfig("name: web\nqmp:\n  allow: [query-*, '@safe']\n  deny: [quit]\n", { baseDir: "/srv" });
    expect(config.qmp).toEqual({ allow: ["query-*", "@safe"], deny: ["quit"] });
  });

  it("refuses bad entries, unknown keys and unknown tiers with the key path", () => {
    const at = { keyPath: "qmp", source: "x.yaml" };
    for (const [value, keyPath] of [
      [{ allow: ["Query"] }, "qmp.allow[0]"],
      [{ allow: ["@nope"] }, "qmp.allow[0]"],
      [{ deny: "quit" }, "qmp.deny"],
      [{ permit: [] }, "qmp.permit"],
      [["quit"], "qmp"],
    ] as const) {
      const error = errorOf(() => parseQmpRules(value, at));
      expect(error).toBeMaqetError("CONFIG_INVALID", { keyPath });
    }
  });

  it("the global config is strict: only qmp", () => {
    expect(parseGlobalConfig("qmp:\n  deny: [quit]\n", { source: "c.yaml" })).toEqual({ qmp: { deny: ["quit"] } });
    expect(parseGlobalConfig("", { source: "c.yaml" })).toEqual({});
    expect(() => parseGlobalConfig("qpm: {}\n", { source: "c.yaml" })).toThrow(/unknown key 'qpm'/);
    expect(() => parseGlobalConfig("- a\n", { source: "c.yaml" })).toThrow(/must be a mapping/);
  });
});

describe("qmp.command-executed schema 1 upcast", () => {
  it("fills the tier from the name and the rule 'unchecked'", () => {
    const event = asVmEvent({
      id: "x",
      streamId: "vm-1",
      streamVersion: 3,
      globalPosition: 9,
      type: "qmp.command-executed",
      schemaVersion: 1,
      data: { command: "quit", argumentNames: [], outcome: "ok", durationMs: 1 },
      metadata: { actor: { user: "u", uid: 1, host: "h", pid: 1 } },
      recordedAt: new Date(0),
    });
    expect(event).toMatchObject({ schemaVersion: 2, data: { tier: "privileged", rule: "unchecked" } });
  });

  it("leaves schema 2, and every other type, as stored", () => {
    const stored = (type: string, schemaVersion: number, data: Record<string, unknown>) => ({
      id: "x",
      streamId: "vm-1",
      streamVersion: 3,
      globalPosition: 9,
      type,
      schemaVersion,
      data,
      metadata: { actor: { user: "u", uid: 1, host: "h", pid: 1 } },
      recordedAt: new Date(0),
    });
    const v2 = stored("qmp.command-executed", 2, { command: "quit", tier: "safe", rule: "vm:allow:quit" });
    expect(asVmEvent(v2)).toEqual(v2);
    const started = stored("vm.stop-step", 1, { step: "quit" });
    expect(asVmEvent(started)).toEqual(started);
    expect(asVmEvent(stored("qmp.command-rejected", 1, {}))).toBeUndefined();
  });
});

describe("asQmpEvent", () => {
  it("takes the qmp catalogue's types only", () => {
    const rejected = {
      id: "x",
      streamId: "qmp-rejections",
      streamVersion: 0,
      globalPosition: 1,
      type: "qmp.command-rejected",
      schemaVersion: 1,
      data: { command: "inject-nmi", tier: "dangerous", rule: "tier:dangerous", vm: "web", argumentNames: [] },
      metadata: { actor: { user: "u", uid: 1, host: "h", pid: 1 } },
      recordedAt: new Date(0),
    };
    expect(asQmpEvent(rejected)).toBe(rejected);
    expect(asQmpEvent({ ...rejected, type: "qmp.command-executed" })).toBeUndefined();
  });
});

describe("refusals say which rule, where it is, and how to change it", () => {
  it("a deny entry: the entry and the config it is in (the VM's by name, or the global one)", () => {
    expect(decideQmp("quit", { vm: { deny: ["quit"] }, vmName: "web" }).reason).toBe(
      "QMP command 'quit' refused by the deny entry 'quit' in VM 'web''s config (qmp: section). Remove the entry there to allow it.",
    );
    expect(decideQmp("quit", { vm: { deny: ["@privileged"] } }).reason).toContain("in VM '?''s config (qmp: section)");
    expect(decideQmp("quit", { global: { deny: ["quit"] } }).reason).toContain(
      "in the global config (qmp: section of $XDG_CONFIG_HOME/maqet/config.yaml, or the qmpPolicy option).",
    );
  });

  it("no allow entry matches: the tier and what is allowed, 'nothing' for an empty list", () => {
    expect(decideQmp("screendump", { global: { allow: ["query-*", "send-key"] } }).reason).toBe(
      "QMP command 'screendump' (tier safe) refused: it matches no allow entry in the global config (qmp: section of $XDG_CONFIG_HOME/maqet/config.yaml, or the qmpPolicy option) (allowed: query-*, send-key). Add it to the allow list there to run it.",
    );
    expect(decideQmp("query-status", { vm: { allow: [] }, vmName: "db" }).reason).toContain("(allowed: nothing)");
  });

  it("the dangerous tier: what it is, the flag that lets it run, and the page that explains it", () => {
    expect(decideQmp("human-monitor-command").reason).toBe(
      "QMP command 'human-monitor-command' refused: it is in the dangerous tier (it bypasses maqet's model of the VM). " +
        "Add --allow-dangerous (library: { allowDangerous: true }) to run it; the VM is then marked tainted. See docs/security.md.",
    );
  });

  it("a malformed name: the pattern, an example, the name in the details", () => {
    const error = errorOf(() => decideQmp("Query"));
    expect(error).toBeMaqetError("INVALID_ARGUMENT", { command: "Query" });
    expect((error as Error).message).toBe(
      "Invalid QMP command name 'Query': it must match /^[a-z][a-z0-9_-]*$/ (e.g. query-status).",
    );
  });

  it("qmpRefusedError: QMP_REFUSED with the decision's reason, command, tier, rule and VM", () => {
    const decision = decideQmp("quit", { vm: { deny: ["quit"] }, vmName: "web" });
    const error = qmpRefusedError(decision, "web");
    expect(error).toBeMaqetError("QMP_REFUSED", {
      command: "quit",
      tier: "privileged",
      rule: "vm:deny:quit",
      vm: "web",
    });
    expect(error.message).toBe(decision.reason);
    const { reason: _, ...withoutReason } = decision;
    expect(qmpRefusedError(withoutReason, "web").message).toBe("QMP command 'quit' refused.");
  });
});
