/**
 * The QMP hot path (issue 15): `maqet.qmp()` on a VM whose actor this instance holds costs the
 * QMP round trip plus ONE statement, the append of its `qmp.command-executed`: no VM lookup, no
 * projection catch-up, no other read; `status` of such a VM and `ls` while no vm.* event was
 * appended send none (src/actors/cached-vm-directory.ts, Orchestrator.liveView); `stop --force` of
 * such a VM sends its two appends and nothing else. Counted at the
 * driver (MaqetOptions.onStatement, every statement including BEGIN/COMMIT), against real QEMU and
 * the embedded store, so a regression that adds a statement fails here.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { Maqet } from "../../src/mod.ts";
import { firmwareVmYaml } from "../support/firmware-vm.ts";
import { maqetForSuite } from "../support/library-maqet.ts";

describe("maqet.qmp() hot path (real QEMU, embedded store)", { timeout: 60_000 }, () => {
  let dir: string;
  let maqet: Maqet;
  let statements: string[] | undefined;

  maqetForSuite("maqet-hotpath-", (s) => ({ dir, maqet } = s), { onStatement: (sql) => statements?.push(sql) });
  beforeAll(async () => {
    await writeFile(join(dir, "hot.yaml"), firmwareVmYaml("hot"));
    await maqet.add(join(dir, "hot.yaml"));
    await maqet.start("hot");
  }, 300_000); // a fresh embedded store takes ~100 s to create at load 30 on 2 cores

  it("sends one statement per warm call: the append of its qmp.command-executed", async () => {
    await maqet.qmp("hot", "query-status"); // the actor is loaded by start already; one warm-up call
    const before = (await maqet.history("hot")).length;
    const perCall: string[][] = [];
    for (let i = 0; i < 5; i++) {
      statements = [];
      const reply = (await maqet.qmp("hot", "query-status")) as { status: string };
      expect(reply.status).toBe("running");
      perCall.push(statements);
      statements = undefined;
    }
    for (const sent of perCall) {
      expect(sent, sent.join("\n---\n")).toHaveLength(1);
      expect(sent[0]).toContain("maqet_append(");
    }
    // And the fact was recorded each time (the one statement is the append).
    const history = await maqet.history("hot");
    expect(history.length - before).toBe(5);
    expect(history.slice(-5).map((e) => e.type)).toEqual(Array(5).fill("qmp.command-executed"));
  });

  it("looks the VM up by its id too, and still refuses what the policy refuses before QEMU sees it", async () => {
    const { id } = await maqet.status("hot");
    statements = [];
    await maqet.qmp(id, "query-status");
    expect(statements).toHaveLength(1);
    statements = undefined;
    await expect(maqet.qmp("hot", "human-monitor-command", { "command-line": "info status" })).rejects.toMatchObject({
      code: "QMP_REFUSED",
    });
  });

  it("status of a VM whose actor is held, and ls while nothing changed, send no statement (the agent's reads)", async () => {
    await maqet.list(); // reads the VM list once
    statements = [];
    const status = await maqet.status("hot");
    const listed = await maqet.list();
    const sent = statements;
    statements = undefined;
    expect(status.state).toBe("running");
    expect(listed.map((v) => v.name)).toContain("hot");
    expect(sent, sent.join("\n---\n")).toEqual([]);
    // A vm.* event appended through this store makes the next ls read again, and see it.
    await maqet.add({ name: "hot-2", accel: "tcg", memory: "32M" });
    statements = [];
    const again = await maqet.list();
    const reread = statements;
    statements = undefined;
    expect(again.map((v) => v.name)).toEqual(expect.arrayContaining(["hot", "hot-2"]));
    expect(reread.length).toBeGreaterThan(0);
  });

  it("stop --force of a VM whose actor is held sends two statements (its two appends), and ls shows it stopped", async () => {
    statements = [];
    const stopped = await maqet.stop("hot", { force: true });
    const sent = statements;
    statements = undefined;
    expect(stopped.state).toBe("stopped");
    // No lookup, no projection catch-up: the request with its sigkill step, then vm.stopped.
    expect(sent, sent.join("\n---\n")).toHaveLength(2);
    expect(sent.every((s) => s.includes("maqet_append("))).toBe(true);
    expect((await maqet.list()).find((v) => v.name === "hot")?.state).toBe("stopped");
    const types = (await maqet.history("hot")).slice(-3).map((e) => e.type);
    expect(types).toEqual(["vm.stop-requested", "vm.stop-step", "vm.stopped"]);
  });
});
