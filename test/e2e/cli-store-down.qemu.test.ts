/**
 * The PostgreSQL server goes down with a VM running: `stop --force` still stops it (found and
 * identified from its runtime directory), says the fact will be recorded when the store is back,
 * and keeps it in a local spool (0600); the server comes back and the next command records it —
 * once, even when the spool is replayed. A real server of its own (stopped and restarted), real
 * QEMU, the built CLI.
 */
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox, processAlive, waitFor } from "../support/cli-runner.ts";
import { startTestPostgres, type TestPostgres } from "../support/postgres-cluster.ts";

interface Entry {
  id: string;
  type: string;
  data: Record<string, unknown>;
}

describe("stop --force with the store down (real PostgreSQL, real QEMU)", { timeout: 300_000 }, () => {
  let pg: TestPostgres;
  let box: CliSandbox;
  let url: string;
  let spool: string;
  const db = (args: string[]) => box.run([...args, "--db", url]);
  const history = async () => (await db(["history", "web", "--json"])).json<{ events: Entry[] }>().events;

  beforeAll(async () => {
    pg = await startTestPostgres();
    url = pg.url;
    box = await createCliSandbox();
    spool = join(box.env.XDG_DATA_HOME!, "maqet", "spool", "facts.jsonl");
    await writeFile(
      join(box.home, "web.yaml"),
      "name: web\nbinary: /usr/bin/qemu-system-x86_64\naccel: tcg\nmemory: 64M\n",
    );
  }, 300_000);
  afterAll(async () => {
    await pg.up().catch(() => undefined);
    await db(["stop", "web", "--force"]).catch(() => undefined);
    await box.cleanup();
    await pg.stop();
  });

  it("stops the VM, spools the fact (0600), and the next command records it once", async () => {
    expect((await db(["add", "web.yaml"])).code).toBe(0);
    expect((await db(["start", "web"])).code).toBe(0);
    const { pid } = (await db(["status", "web", "--json"])).json<{ pid: number }>();
    expect(await processAlive(pid)).toBe(true);

    await pg.down();
    // Without --force nothing can be done safely: the store error, as before.
    const graceful = await db(["stop", "web"]);
    expect(graceful.code).toBe(1);
    expect(graceful.stderr).toContain("Cannot connect to the PostgreSQL server");
    expect(await processAlive(pid)).toBe(true);

    const stop = await db(["stop", "web", "--force"]);
    expect(stop.stderr).toBe("");
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain("Stopped VM 'web' (destroyed via sigkill).");
    expect(stop.stdout).toContain(`the stop is kept in ${spool} and will be recorded when the store is back`);
    expect(await waitFor(async () => !(await processAlive(pid)), 10_000)).toBe(true);
    expect((await stat(spool)).mode & 0o777).toBe(0o600);
    expect((await stat(join(spool, ".."))).mode & 0o777).toBe(0o700);
    const spooled = await readFile(spool, "utf8");
    expect(spooled.trim().split("\n")).toHaveLength(1);
    // The batch names its store (the URL without a password) and carries the events' ids.
    expect(JSON.parse(spooled)).toMatchObject({
      store: url,
      name: "web",
      events: [{ type: "vm.stop-requested" }, { type: "vm.stopped" }],
    });
    // A second --force finds no running QEMU: nothing more spooled.
    const again = await db(["stop", "web", "--force"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("No running QEMU of VM 'web' was found");
    expect(await readFile(spool, "utf8")).toBe(spooled);

    await pg.up();
    const status = await db(["status", "web", "--json"]);
    expect(status.code).toBe(0);
    expect(status.stderr).toContain("recorded the stop of VM 'web'");
    expect(status.json<{ state: string; detail: string }>()).toMatchObject({ state: "stopped", detail: "destroyed" });
    await expect(stat(spool)).rejects.toThrow(/ENOENT/);
    const events = await history();
    expect(events.slice(-2).map((e) => e.type)).toEqual(["vm.stop-requested", "vm.stopped"]);
    expect(events.at(-1)!.data).toMatchObject({ detail: "destroyed", method: "sigkill", pid });
    expect(events.filter((e) => e.type === "vm.stopped")).toHaveLength(1);

    // The spool replayed (a crash between the append and the spool's rewrite): stored once.
    await writeFile(spool, spooled, { mode: 0o600 });
    const replay = await db(["ls", "--json"]);
    expect(replay.code).toBe(0);
    expect(replay.stderr).not.toContain("recorded the stop");
    await expect(stat(spool)).rejects.toThrow(/ENOENT/);
    expect((await history()).map((e) => e.id)).toEqual(events.map((e) => e.id));
  });
});
