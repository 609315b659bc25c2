/**
 * audit, audit verify and stats through the facade with a custom store (the in-memory path), and
 * the binary cache's hit counter.
 */
import { describe, expect, it } from "vitest";
import { createBinaryLocator } from "../../src/adapters/binary-locator.ts";
import { findCommand } from "../../src/api/commands.ts";
import { createMaqet } from "../../src/api/maqet.ts";
import { renderResult } from "../../src/cli/render.ts";
import { createFakeWorld } from "../support/fake-ports.ts";
import { MemoryEventStore } from "../support/memory-event-store.ts";

async function setup() {
  const store = new MemoryEventStore();
  const maqet = createMaqet({ store, ports: createFakeWorld().ports, source: "test" });
  await maqet.add({ name: "web", accel: "tcg" });
  await maqet.start("web");
  await maqet.qmp("web", "query-status");
  await maqet.qmp("web", "query-status");
  await maqet.qmp("web", "inject-nmi").catch(() => undefined);
  await maqet.qmp("web", "nope").catch(() => undefined);
  await maqet.stop("web");
  return { store, maqet };
}

describe("audit and stats (custom store: built in memory)", () => {
  it("every event is an entry, filtered by VM and time, chained by hash", async () => {
    const { store, maqet } = await setup();
    const entries = await maqet.audit();
    expect(entries.map((e) => e.operation)).toEqual(store.events.map((e) => e.type));
    expect(entries.every((e, i) => i === 0 || e.prevHash === entries[i - 1]!.hash)).toBe(true);
    const refused = entries.find((e) => e.outcome === "refused")!;
    expect(refused).toMatchObject({ vm: "web", detail: "inject-nmi", tier: "dangerous", rule: "tier:dangerous" });
    expect(entries.find((e) => e.operation === "vm.start-requested")).toMatchObject({
      vm: "web",
      outcome: "requested",
      parameters: expect.arrayContaining(["timeoutMs"]),
      source: "test",
      correlationId: expect.any(String),
    });
    expect((await maqet.audit({ vm: "other" })).length).toBe(0);
    const middle = entries[3]!.at;
    expect((await maqet.audit({ since: new Date(middle) }))[0]!.seq).toBe(4);
    expect((await maqet.audit({ until: new Date(middle) })).at(-1)!.seq).toBe(4);
    expect(await maqet.auditVerify()).toMatchObject({ ok: true, entries: entries.length, head: entries.at(-1)!.hash });
  });

  it("stats count QMP commands by name, tier and outcome, from the store and from this process", async () => {
    const { maqet } = await setup();
    const stats = await maqet.stats();
    expect(stats.qmp.commands).toEqual([
      { command: "inject-nmi", tier: "dangerous", outcome: "refused", count: 1 },
      { command: "nope", tier: "safe", outcome: "error", count: 1 },
      { command: "query-status", tier: "safe", outcome: "ok", count: 2 },
    ]);
    expect(stats.qmp.total).toBe(4);
    expect(stats.process.qmp).toEqual(stats.qmp.commands);
    expect(stats.process.binaryCache).toEqual({ lookups: expect.any(Number), hits: expect.any(Number) });
  });

  it("audit --format jsonl prints one object a line; the text table names the rule of a refusal", async () => {
    const { maqet } = await setup();
    const audit = findCommand("audit")!;
    const jsonl = renderResult("audit", await audit.invoke(maqet, { format: "jsonl", vm: "web" }));
    const lines = jsonl.split("\n");
    expect(lines.length).toBeGreaterThan(5);
    expect(lines.map((l) => JSON.parse(l).operation)[0]).toBe("vm.defined");
    const table = renderResult("audit", await audit.invoke(maqet, {}));
    expect(table).toMatch(/qmp\.command-rejected\s+refused\s+dangerous\s+inject-nmi, rule tier:dangerous/);
    const bad = await audit.invoke(maqet, { format: "xml" }).catch((e) => e);
    expect(bad).toBeMaqetError("INVALID_ARGUMENT");
    expect(renderResult("audit verify", await findCommand("audit verify")!.invoke(maqet, {}))).toMatch(
      /Audit trail intact: \d+ entries/,
    );
  });
});

describe("binary cache counters", () => {
  it("counts lookups that ran and calls answered from the cache", async () => {
    const locator = createBinaryLocator({ env: { PATH: "/bin" }, isExecutable: async () => true });
    await Promise.all([locator.locate("qemu-img"), locator.locate("qemu-img")]);
    await locator.locate("qemu-img");
    expect({ lookups: locator.lookups, hits: locator.hits }).toEqual({ lookups: 1, hits: 2 });
  });
});
