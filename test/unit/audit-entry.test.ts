/**
 * The audit trail's entries (src/events/audit-entry.ts), without a database: what each field is
 * taken from, that parameter values never appear, the outcome and detail of each kind of fact,
 * and the hash chain (every field counts; each entry names the one before).
 */
import { describe, expect, it } from "vitest";
import { AuditChain, auditFields, GENESIS_HASH, hashAuditEntry } from "../../src/events/audit-entry.ts";
import type { StoredEvent } from "../../src/events/envelope.ts";
import { storedStream } from "../support/store-events.ts";

const vmId = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const noNames = new Map<string, string>();

/** One stored fact of `streamId` (version 0, recorded 2026-01-01T00:00:00Z). */
function fact(
  type: string,
  data: unknown,
  options: { streamId?: string; metadata?: StoredEvent["metadata"] } = {},
): StoredEvent {
  const [stored] = storedStream(options.streamId ?? `vm-${vmId}`, [{ type, schemaVersion: 1, data }]);
  return { ...stored!, metadata: options.metadata ?? stored!.metadata };
}

describe("auditFields", () => {
  it("a VM fact: the VM's id from the stream, its name as known, the actor and the operation's metadata", () => {
    const event = fact(
      "vm.stop-requested",
      { force: true, timeoutMs: 30_000 },
      {
        metadata: {
          actor: { user: "ada", uid: 1000, host: "lab1", pid: 4242 },
          correlationId: "op-1",
          source: "cli",
        },
      },
    );
    expect(auditFields(event, new Map([[vmId, "web"]]))).toEqual({
      position: event.globalPosition,
      eventId: event.id,
      at: "2026-01-01T00:00:00.000Z",
      streamId: `vm-${vmId}`,
      vmId,
      vm: "web",
      operation: "vm.stop-requested",
      parameters: ["force", "timeoutMs"],
      tier: null,
      rule: null,
      outcome: "requested",
      detail: null,
      user: "ada",
      uid: 1000,
      host: "lab1",
      pid: 4242,
      correlationId: "op-1",
      source: "cli",
    });
  });

  it("the VM: vm.defined names it; a VM not named yet is null; outside a VM stream, data.vmId and data.vm", () => {
    expect(auditFields(fact("vm.defined", { vmId, name: "db", config: {} }), noNames).vm).toBe("db");
    // Only vm.defined names the VM: another fact's `name` (a drive's, a host's) does not.
    expect(auditFields(fact("disk.created", { name: "hdd" }), new Map([[vmId, "web"]])).vm).toBe("web");
    expect(auditFields(fact("vm.started", { pid: 1 }), noNames)).toMatchObject({ vmId, vm: null });
    const rejected = fact("qmp.command-rejected", { vm: "typo", command: "quit" }, { streamId: "qmp-audit" });
    expect(auditFields(rejected, noNames)).toMatchObject({ vmId: null, vm: "typo" });
    const placed = fact("host.vm-placed", { vmId, vm: 7 }, { streamId: "host-lab1" });
    expect(auditFields(placed, new Map([[vmId, "web"]]))).toMatchObject({ vmId, vm: "web" });
    expect(auditFields(fact("host.joined", { vmId: 3 }, { streamId: "host-lab1" }), noNames)).toMatchObject({
      vmId: null,
      vm: null,
    });
  });

  it("parameters are names only: QMP argument names, or the data's keys sorted; never a value", () => {
    const executed = fact("qmp.command-executed", {
      command: "send-key",
      argumentNames: ["keys", "hold-time"],
      arguments: { keys: ["s", "e", "c", "r", "e", "t"] },
      outcome: "ok",
      tier: "safe",
      rule: "tier:safe",
    });
    const fields = auditFields(executed, noNames);
    expect(fields.parameters).toEqual(["keys", "hold-time"]);
    expect(JSON.stringify(fields)).not.toContain('"s","e"');
    expect(
      auditFields(fact("vm.reconfigured", { via: "apply", changed: ["x"], after: {} }), noNames).parameters,
    ).toEqual(["after", "changed", "via"]);
    // A QMP fact without argument names (an old writer's) lists its data keys.
    expect(auditFields(fact("qmp.command-executed", { command: "quit", outcome: "ok" }), noNames).parameters).toEqual([
      "command",
      "outcome",
    ]);
  });

  it("QMP facts: the tier, the rule, the command as detail, ok or error; a rejected one is refused", () => {
    const ok = fact("qmp.command-executed", {
      command: "quit",
      argumentNames: [],
      outcome: "ok",
      tier: "privileged",
      rule: "tier:privileged",
    });
    expect(auditFields(ok, noNames)).toMatchObject({
      tier: "privileged",
      rule: "tier:privileged",
      outcome: "ok",
      detail: "quit",
    });
    const error = fact("qmp.command-executed", { command: "stop", argumentNames: [], outcome: "error", detail: "x" });
    expect(auditFields(error, noNames)).toMatchObject({ outcome: "error", detail: "stop", tier: null, rule: null });
    const refused = fact("qmp.command-rejected", { command: "inject-nmi", tier: "dangerous", rule: "tier:dangerous" });
    expect(auditFields(refused, noNames)).toMatchObject({ outcome: "refused", detail: "inject-nmi" });
    expect(auditFields(fact("qmp.command-executed", { command: 5, outcome: "ok" }), noNames).detail).toBeNull();
  });

  it("other facts: requested, failed or ok; the detail is the first of detail, command, tag, step, reason, code, drive", () => {
    const outcome = (type: string) => auditFields(fact(type, {}), noNames).outcome;
    expect(outcome("snapshot.create-requested")).toBe("requested");
    expect(outcome("vm.start-failed")).toBe("failed");
    expect(outcome("vm.stopped")).toBe("ok");
    const detail = (data: Record<string, unknown>) => auditFields(fact("vm.something", data), noNames).detail;
    const all = { drive: "hdd", code: "E", reason: "r", step: "quit", tag: "t1", command: "c", detail: "crashed" };
    expect(detail(all)).toBe("crashed");
    expect(detail({ ...all, detail: "" })).toBe("c");
    expect(detail({ ...all, detail: undefined, command: undefined })).toBe("t1");
    expect(detail({ drive: "hdd", code: "E", reason: "r", step: "quit" })).toBe("quit");
    expect(detail({ drive: "hdd", code: "E", reason: "r" })).toBe("r");
    expect(detail({ drive: "hdd", code: "E" })).toBe("E");
    expect(detail({ drive: "hdd", detail: 3 })).toBe("hdd");
    expect(detail({ other: "x" })).toBeNull();
  });

  it("data or an actor that is not an object, and fields of the wrong type, give nulls rather than garbage", () => {
    const odd = fact("vm.started", ["a", "b"], {
      metadata: { actor: { user: 1, uid: "0", host: 5, pid: "9" } as never, correlationId: 5 as never },
    });
    expect(auditFields(odd, noNames)).toMatchObject({
      parameters: [],
      user: null,
      uid: null,
      host: null,
      pid: null,
      correlationId: null,
      source: null,
    });
    const noActor = fact("vm.started", null, { metadata: { actor: "root" as never } });
    expect(auditFields(noActor, noNames)).toMatchObject({ parameters: [], user: null });
    const noMetadata = { ...fact("vm.started", { pid: 1 }), metadata: undefined as never };
    expect(auditFields(noMetadata, noNames)).toMatchObject({ user: null, correlationId: null, source: null });
  });
});

describe("hashAuditEntry", () => {
  const entry = async () => {
    const fields = auditFields(fact("vm.started", { pid: 1 }), noNames);
    return { ...fields, seq: 1, prevHash: GENESIS_HASH };
  };

  it("a SHA-256 in 64 hex digits, the same for the same entry", async () => {
    const e = await entry();
    const hash = await hashAuditEntry(e);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(await hashAuditEntry({ ...e })).toBe(hash);
    // Bytes below 0x10 keep their leading zero: every hash is 64 digits long.
    for (let seq = 2; seq < 40; seq += 1) expect(await hashAuditEntry({ ...e, seq })).toHaveLength(64);
  });

  it("every field counts: changing any one changes the hash", async () => {
    const e = await entry();
    const base = await hashAuditEntry(e);
    const changes: Partial<typeof e>[] = [
      { seq: 2 },
      { position: 99 },
      { eventId: "other" },
      { at: "2026-01-02T00:00:00.000Z" },
      { streamId: "vm-other" },
      { vmId: "other" },
      { vm: "other" },
      { operation: "vm.stopped" },
      { parameters: ["x"] },
      { tier: "safe" },
      { rule: "tier:safe" },
      { outcome: "failed" },
      { detail: "crashed" },
      { user: "eve" },
      { uid: 7 },
      { host: "other" },
      { pid: 7 },
      { correlationId: "op-2" },
      { source: "agent" },
      { prevHash: "f".repeat(64) },
    ];
    for (const change of changes) {
      expect(await hashAuditEntry({ ...e, ...change }), JSON.stringify(change)).not.toBe(base);
    }
  });
});

describe("AuditChain", () => {
  it("numbers entries from 1, chains each to the one before from the genesis hash, and learns VM names", async () => {
    const chain = new AuditChain();
    const defined = await chain.next(fact("vm.defined", { vmId, name: "web", config: {} }));
    const started = await chain.next(fact("vm.started", { pid: 1 }));
    expect(defined).toMatchObject({ seq: 1, prevHash: GENESIS_HASH, vm: "web" });
    expect(defined.hash).toBe(await hashAuditEntry({ ...defined, hash: undefined } as never));
    expect(started).toMatchObject({ seq: 2, prevHash: defined.hash, vm: "web" });
    expect(chain.state).toMatchObject({ seq: 2, hash: started.hash });
    expect(chain.state.names.get(vmId)).toBe("web");
  });

  it("continues from a saved state, without sharing its map of names", async () => {
    const names = new Map([[vmId, "web"]]);
    const chain = new AuditChain({ seq: 41, hash: "a".repeat(64), names });
    names.set(vmId, "changed later");
    const entry = await chain.next(fact("vm.started", { pid: 1 }));
    expect(entry).toMatchObject({ seq: 42, prevHash: "a".repeat(64), vm: "web" });
    // A vm.defined outside a VM stream with no vmId names nothing; nor one without a name.
    await chain.next(fact("vm.defined", { name: "ghost" }, { streamId: "other-1" }));
    await chain.next(fact("vm.defined", { config: {} }, { streamId: "vm-unnamed" }));
    expect([...chain.state.names.keys()]).toEqual([vmId]);
  });
});
