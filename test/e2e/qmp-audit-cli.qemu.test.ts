/**
 * Issue 5 through the CLI, each command a separate process (real QEMU, embedded store): refused
 * QMP commands exit 4 (even for a VM that does not exist), the global policy file, taint in `ls`
 * and `status`, helper-name precedence, key=value arguments, `history --at` at four points of a
 * start/pause/resume/stop run, `audit` (table, jsonl, --vm), `audit verify` before and after a
 * direct SQL edit of the trail, and `stats --json`.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPgliteDatabase } from "../../src/adapters/pglite-database.ts";
import { type CliSandbox, createCliSandbox } from "../support/cli-runner.ts";
import { firmwareVmYaml } from "../support/firmware-vm.ts";

const firmwareVm = firmwareVmYaml;

interface HistoryEntry {
  version: number;
  type: string;
  at: string;
}

describe("QMP policy, history --at and audit through the CLI (real QEMU)", { timeout: 240_000 }, () => {
  let box: CliSandbox;
  beforeAll(async () => {
    box = await createCliSandbox();
    await writeFile(join(box.home, "web.yaml"), firmwareVm("web"));
    await writeFile(join(box.home, "keys.yaml"), firmwareVm("keys"));
  });
  afterAll(async () => {
    for (const name of ["web", "keys"]) await box.run(["stop", name, "--force"]);
    await box.cleanup();
  });

  it("refuses dangerous commands with exit 4, before any VM lookup; --allow-dangerous runs and taints", async () => {
    const ghost = await box.run(["qmp", "ghost", "human-monitor-command", "command-line=info status", "--json"]);
    expect(ghost.code).toBe(4);
    expect(ghost.stderr).toContain("--allow-dangerous");
    expect(ghost.json<{ error: { code: string; details: { rule: string } } }>().error).toMatchObject({
      code: "QMP_REFUSED",
      details: { rule: "tier:dangerous" },
    });
    expect((await box.run(["add", "web.yaml"])).code).toBe(0);
    expect((await box.run(["start", "web"])).code).toBe(0);
    const refused = await box.run(["qmp", "web", "human-monitor-command", "command-line=stop"]);
    expect(refused.code).toBe(4);
    expect((await box.run(["qmp", "web", "query-status"])).json()).toMatchObject({ status: "running" });

    const allowed = await box.run([
      "qmp",
      "web",
      "human-monitor-command",
      "command-line=info version",
      "--allow-dangerous",
    ]);
    expect(allowed.code).toBe(0);
    expect(allowed.json()).toMatch(/7\.2/);
    const ls = await box.run(["ls"]);
    expect(ls.stdout).toMatch(/web\s+running\s+\d+\s+tainted/);
    const status = await box.run(["status", "web", "--json"]);
    expect(status.json()).toMatchObject({ tainted: { reason: "custom-monitor", command: "human-monitor-command" } });
    expect((await box.run(["status", "web"])).stdout).toMatch(/tainted:\s+custom-monitor \(human-monitor-command/);
  });

  it("passes key=value and key:=json arguments", async () => {
    const file = join(box.home, "mem.bin");
    const dump = await box.run(["qmp", "web", "pmemsave", "val:=0", "size:=512", `filename=${file}`]);
    expect(dump.stderr).toBe("");
    expect(dump.code).toBe(0);
    const bad = await box.run(["qmp", "web", "pmemsave", "val:=zero"]);
    expect(bad.code).toBe(3);
  });

  it("the global policy file ($XDG_CONFIG_HOME or ~/.config/maqet/config.yaml) refuses for every VM; a broken one blocks QMP, not ls", async () => {
    const dir = join(box.home, ".config", "maqet");
    await mkdir(dir, { recursive: true });
    try {
      await writeFile(join(dir, "config.yaml"), "qmp:\n  deny: [stop]\n");
      const denied = await box.run(["qmp", "web", "stop"]);
      expect(denied.code, denied.stderr).toBe(4);
      expect(denied.stderr).toContain("deny entry 'stop'");
      expect((await box.run(["qmp", "web", "query-status"])).json()).toMatchObject({ status: "running" });
      await writeFile(join(dir, "config.yaml"), "qmp:\n  alow: [stop]\n");
      const broken = await box.run(["qmp", "web", "query-status"]);
      expect(broken.code, broken.stderr).toBe(3);
      expect(broken.stderr).toContain("unknown key 'qmp.alow'");
      const ls = await box.run(["ls"]);
      expect(ls.code, ls.stderr).toBe(0);
    } finally {
      await writeFile(join(dir, "config.yaml"), "");
    }
  });

  it("a helper name in second place is the helper; `--` makes it a VM name", async () => {
    expect((await box.run(["add", "keys.yaml"])).code).toBe(0);
    expect((await box.run(["start", "keys"])).code).toBe(0);
    const raw = await box.run(["qmp", "--", "keys", "query-status"]);
    expect(raw.code, raw.stderr).toBe(0);
    expect(raw.json()).toMatchObject({ status: "running" });
    const helper = await box.run(["qmp", "keys", "keys", "ctrl-alt-delete"]);
    expect(helper.stderr).toBe("");
    expect(helper.stdout).toContain("Sent ctrl+alt+delete to VM 'keys'.");
    expect((await box.run(["stop", "keys", "--force"])).code).toBe(0);
  });

  it("history --at gives the state at four points of start, pause, resume, stop", async () => {
    expect((await box.run(["pause", "web"])).code).toBe(0);
    expect((await box.run(["resume", "web"])).code).toBe(0);
    expect((await box.run(["stop", "web", "--timeout", "1"])).code).toBe(0);
    const events = (await box.run(["history", "web", "--json"])).json<{ events: HistoryEntry[] }>().events;
    const last = (type: string) => events.filter((e) => e.type === type).at(-1)!;
    const points: Array<[string, string, string | null]> = [
      [last("vm.started").at, "running", null],
      [last("vm.paused").at, "paused", "user"],
      [last("vm.resumed").at, "running", null],
      [last("vm.stopped").at, "stopped", "destroyed"],
    ];
    for (const [at, state, detail] of points) {
      const h = await box.run(["history", "web", "--at", at, "--json"]);
      expect(h.code, h.stderr).toBe(0);
      const body = h.json<{ state: { state: string; detail: string | null }; events: HistoryEntry[] }>();
      expect(body.state, at).toMatchObject({ state, detail });
      expect(body.events.at(-1)!.at <= at).toBe(true);
    }
    const v = await box.run(["history", "web", "--version", "0"]);
    expect(v.stdout).toMatch(/VM 'web' at version 0:\n\s+state:\s+stopped/);
  });

  it("audit lists every operation with who and outcome; jsonl for shipping; verify; a direct SQL edit is named", async () => {
    const table = await box.run(["audit", "--vm", "web"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/vm\.start-requested\s+requested/);
    expect(table.stdout).toMatch(
      /qmp\.command-rejected\s+refused\s+dangerous\s+human-monitor-command, rule tier:dangerous/,
    );
    expect(table.stdout).toMatch(/vm\.tainted\s+ok/);
    const jsonl = await box.run(["audit", "--format", "jsonl"]);
    const entries = jsonl.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(entries[0]).toMatchObject({
      seq: 1,
      operation: expect.any(String),
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(entries.find((e) => e.vm === "ghost")).toMatchObject({
      outcome: "refused",
      detail: "human-monitor-command",
    });
    expect(entries.every((e) => e.user && e.pid && e.host)).toBe(true);
    expect(JSON.stringify(entries)).not.toContain("info version"); // argument values never reach the trail

    const ok = await box.run(["audit", "verify"]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/Audit trail intact: \d+ entries, each matching its event/);

    const target = entries.find((e) => e.operation === "vm.tainted");
    await box.withStoreFree(async () => {
      const db = await openPgliteDatabase({ dataDir: join(box.env.XDG_DATA_HOME!, "maqet", "pglite") });
      await sql`update maqet_audit set actor_user = 'someone-else' where seq = ${target.seq}`.execute(db.db);
      await db.close();
    });
    const broken = await box.run(["audit", "verify", "--json"]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain(`Audit trail broken at entry ${target.seq}`);
    expect(broken.json<{ error: { code: string; details: { broken: { seq: number } } } }>().error).toMatchObject({
      code: "AUDIT_TAMPERED",
      details: { broken: { seq: target.seq, reason: "modified-entry" } },
    });
  });

  it("stats --json: QMP counts from the store, binary cache per process", async () => {
    const stats = await box.run(["stats", "--json"]);
    expect(stats.code).toBe(0);
    const body = stats.json<{
      qmp: { scope: string; commands: Array<{ command: string; tier: string; outcome: string; count: number }> };
      process: { binaryCache: { lookups: number; hits: number } };
    }>();
    expect(body.qmp.scope).toBe("store");
    expect(body.qmp.commands).toEqual(
      expect.arrayContaining([
        { command: "human-monitor-command", tier: "dangerous", outcome: "refused", count: 2 },
        { command: "human-monitor-command", tier: "dangerous", outcome: "ok", count: 1 },
        { command: "pmemsave", tier: "memory-dump", outcome: "ok", count: 1 },
      ]),
    );
    expect(body.process.binaryCache).toEqual({ lookups: expect.any(Number), hits: expect.any(Number) });
  });
});
