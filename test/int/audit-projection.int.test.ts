/**
 * The audit trail on both dialects: every event type of every catalogue becomes a row (no audit
 * code in the features), a rebuild from position 0 gives identical rows, and `verify` names the
 * first tampered entry after a direct SQL edit (issue 5, acceptance 2 and 3).
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { sql } from "kysely";
import { beforeAll, describe, expect, it } from "vitest";
import { AuditChain, hashAuditEntry } from "../../src/events/audit-entry.ts";
import { readAuditEntries, verifyAuditChain } from "../../src/events/audit-queries.ts";
import type { NewEvent } from "../../src/events/envelope.ts";
import type { PostgresEventStore } from "../../src/events/postgres-event-store.ts";
import { AUDIT_PROJECTION, auditProjection } from "../../src/events/projections/audit-projection.ts";
import { ProjectionRunner } from "../../src/events/projections/projection-runner.ts";
import { projectRoot } from "../support/build-dist.ts";
import { catchUpFully } from "../support/projection-settle.ts";
import { openForSuite, type TestDatabase, testDatabases } from "../support/test-databases.ts";

/** Every event type of every catalogue in src/events (`*_EVENT_SCHEMA` exports of `*-events.ts`). */
async function catalogueTypes(): Promise<Array<{ type: string; schemaVersion: number; catalogue: string }>> {
  const dir = join(projectRoot, "src/events");
  const out: Array<{ type: string; schemaVersion: number; catalogue: string }> = [];
  for (const file of (await readdir(dir)).filter((f) => f.endsWith("-events.ts")).sort()) {
    const module = (await import(join(dir, file))) as Record<string, unknown>;
    for (const [name, value] of Object.entries(module)) {
      if (!name.endsWith("_EVENT_SCHEMA") || typeof value !== "object" || value === null) continue;
      for (const [type, schemaVersion] of Object.entries(value as Record<string, number>)) {
        if (!out.some((t) => t.type === type)) out.push({ type, schemaVersion, catalogue: `${file}:${name}` });
      }
    }
  }
  return out;
}

const expectedOutcome = (type: string): string =>
  type === "qmp.command-rejected"
    ? "refused"
    : type.endsWith("-requested")
      ? "requested"
      : type.endsWith("-failed")
        ? "failed"
        : "ok";

describe.each(testDatabases())("audit projection on $name", (dialect) => {
  let t: TestDatabase;
  let store: PostgresEventStore;
  let runner: ProjectionRunner;
  const vmId = "0b5c0000-0000-4000-8000-000000000001";
  const meta = { correlationId: "corr-1", source: "test" };

  openForSuite(dialect, (opened) => ({ t, store } = opened), {
    actor: () => ({ user: "alice", uid: 1000, host: "lab1", pid: 4242 }),
  });
  beforeAll(() => {
    runner = new ProjectionRunner({ db: t.db, store, projections: [auditProjection], batchSize: 7 });
  });

  it("turns every event type of every catalogue into an entry, with who, when, VM, parameters and outcome", async () => {
    const types = await catalogueTypes();
    expect(types.length).toBeGreaterThan(15);
    expect(types.map((t) => t.type)).toEqual(expect.arrayContaining(["vm.defined", "qmp.command-rejected"]));
    await store.append(`vm-${vmId}`, [
      { type: "vm.defined", schemaVersion: 1, data: { vmId, name: "web", config: {} }, metadata: meta },
    ]);
    for (const { type, schemaVersion } of types) {
      if (type === "vm.defined") continue;
      const qmp = type.startsWith("qmp.");
      const data = qmp
        ? { command: "query-status", argumentNames: ["a"], tier: "safe", rule: "tier:safe", outcome: "ok", vm: "web" }
        : { secret: "hunter2", detail: "x" };
      const stream = type === "qmp.command-rejected" ? "qmp-rejections" : `vm-${vmId}`;
      await store.append(stream, [{ type, schemaVersion, data, metadata: meta } satisfies NewEvent]);
    }
    await catchUpFully(runner, AUDIT_PROJECTION, t.db);
    const entries = await readAuditEntries(t.db);
    expect(entries.map((e) => e.operation).sort()).toEqual(types.map((t) => t.type).sort());
    for (const entry of entries) {
      expect(entry.outcome, entry.operation).toBe(expectedOutcome(entry.operation));
      expect(entry).toMatchObject({ user: "alice", uid: 1000, host: "lab1", pid: 4242, correlationId: "corr-1" });
      expect(entry.vm, entry.operation).toBe("web");
      expect(entry.at).toMatch(/^\d{4}-\d\d-\d\dT/);
      if (entry.operation.startsWith("qmp.")) expect(entry).toMatchObject({ parameters: ["a"], tier: "safe" });
      else if (entry.operation !== "vm.defined") expect(entry.parameters).toEqual(["detail", "secret"]);
    }
    // Names, never values.
    const { rows } = await sql<{ text: string }>`select row_to_json(a)::text as text from maqet_audit a`.execute(t.db);
    expect(rows.map((r) => r.text).join("\n")).not.toContain("hunter2");
    expect(await verifyAuditChain(t.db, store)).toMatchObject({ ok: true, entries: types.length, broken: null });
  });

  it("a rebuild from position 0 gives identical rows, hashes included; the in-memory chain agrees", async () => {
    const before = await readAuditEntries(t.db);
    await runner.rebuild(AUDIT_PROJECTION);
    const after = await readAuditEntries(t.db);
    expect(after).toEqual(before);
    const chain = new AuditChain();
    const rebuilt = [];
    for (const event of await store.readAll()) rebuilt.push(await chain.next(event));
    expect(rebuilt).toEqual(before);
  });

  it("verify names the first tampered entry after a direct SQL edit", async () => {
    // A real change whatever entry 3 is (the catalogue's order decides which event that is).
    await sql`update maqet_audit set outcome = case when outcome = 'ok' then 'failed' else 'ok' end where seq = 3`.execute(
      t.db,
    );
    await sql`update maqet_audit set actor_user = 'mallory' where seq = 5`.execute(t.db);
    const report = await verifyAuditChain(t.db, store);
    expect(report.ok).toBe(false);
    expect(report.entries).toBe(2);
    expect(report.broken).toMatchObject({ seq: 3, reason: "modified-entry" });
    expect(report.broken!.message).toContain("Audit entry 3");
    await runner.rebuild(AUDIT_PROJECTION);
    expect((await verifyAuditChain(t.db, store)).ok).toBe(true);
  });

  it("a deleted row breaks the chain at the next one", async () => {
    await sql`delete from maqet_audit where seq = 4`.execute(t.db);
    expect((await verifyAuditChain(t.db)).broken).toMatchObject({ seq: 5, reason: "missing-entry" });
    await runner.rebuild(AUDIT_PROJECTION);
  });

  it("a rewritten chain (row edited and every hash after it recomputed) is caught by the events", async () => {
    const rows = await readAuditEntries(t.db);
    let prev = rows[1]!.hash;
    for (const row of rows.slice(2)) {
      const edited = { ...row, prevHash: prev, detail: row.seq === 3 ? "nothing to see" : row.detail };
      const { hash: _old, ...unsigned } = edited;
      const hash = await hashAuditEntry(unsigned);
      await sql`update maqet_audit set detail = ${edited.detail}, prev_hash = ${edited.prevHash}, hash = ${hash}
                 where seq = ${row.seq}`.execute(t.db);
      prev = hash;
    }
    expect((await verifyAuditChain(t.db)).ok).toBe(true); // the chain alone cannot tell
    const report = await verifyAuditChain(t.db, store);
    expect(report.broken).toMatchObject({ seq: 3, reason: "differs-from-event", field: "detail" });
    await runner.rebuild(AUDIT_PROJECTION);
  });

  it("keeps chaining across catch-ups and batches", async () => {
    for (let i = 0; i < 10; i++) {
      await store.append(`vm-${vmId}`, [{ type: "vm.paused", schemaVersion: 1, data: { detail: "user" } }]);
      if (i % 3 === 0) await runner.catchUp(AUDIT_PROJECTION);
    }
    await catchUpFully(runner, AUDIT_PROJECTION, t.db);
    const report = await verifyAuditChain(t.db, store);
    expect(report).toMatchObject({ ok: true, broken: null });
    const entries = await readAuditEntries(t.db, { vm: "web" });
    expect(entries.at(-1)).toMatchObject({ operation: "vm.paused", vm: "web", detail: "user" });
    expect(await readAuditEntries(t.db, { vm: "nope" })).toEqual([]);
    expect(await readAuditEntries(t.db, { until: new Date(0) })).toEqual([]);
  });
});
