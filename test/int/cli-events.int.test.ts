/**
 * `maqet events` as a user runs it (the built CLI, a process per call), on the embedded store and
 * on the PostgreSQL server: prints what is stored and exits; `--vm`, `--from`, `--json` (JSONL);
 * `--follow` streams events other processes commit until Ctrl-C, then exits 0.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type EventLine, toEventLine } from "../../src/api/commands/events-commands.ts";
import { createMaqet, type Maqet } from "../../src/api/maqet.ts";
import { runMaqet, sandboxEnv, startMaqet } from "../support/cli-runner.ts";
import { createTestDatabase } from "../support/postgres-cluster.ts";

const databaseUrl = inject("databaseUrl");
const vm = (name: string) => ({ name, memory: "64M", cpu: 1, accel: "tcg", display: "none" });

const run = (args: string[], env: Record<string, string>) => runMaqet(args, { env });
const follow = (args: string[], env: Record<string, string>) => startMaqet(["events", "--follow", ...args], { env });

// Each call is a process of its own that opens the store: seconds each on a loaded machine.
const slow = { timeout: 180_000 };
describe.each([{ dialect: "pglite" }, { dialect: "pg" }])("maqet events on $dialect", slow, ({ dialect }) => {
  let home: string;
  let env: Record<string, string>;
  let drop: (() => Promise<void>) | undefined;
  let url: string | undefined;
  const open = (): Maqet =>
    createMaqet({ databaseUrl: url, dataDir: join(home, "data"), runtimeDir: join(home, "run") });

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "maqet-events-"));
    env = sandboxEnv(home, { XDG_DATA_HOME: join(home, "data-home") });
    if (dialect === "pg") {
      const db = await createTestDatabase(databaseUrl);
      url = db.url;
      drop = db.drop;
      env.MAQET_DATABASE_URL = db.url;
    }
    const maqet = open();
    try {
      await maqet.add(vm("web"));
      await maqet.add(vm("db"));
    } finally {
      await maqet.close();
    }
  }, 300_000); // a fresh embedded store: a minute or more on a loaded 2-core machine
  afterAll(async () => {
    await drop?.();
    await rm(home, { recursive: true, force: true });
  });

  const dataArgs = () => (dialect === "pg" ? [] : ["--data-dir", join(home, "data")]);

  it("prints what is stored, in order, and exits; --vm, --from and --json narrow and shape it", async () => {
    const text = await run(["events", ...dataArgs()], env);
    expect(text.stderr).toBe("");
    expect(text.code).toBe(0);
    const lines = text.stdout.replace(/\n$/, "").split("\n");
    expect(lines.length).toBe(2);
    expect(lines[0]).toMatch(/^\s+\d+ {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} {2}web +vm\.defined +name=web$/);
    expect(lines[1]).toMatch(/ db +vm\.defined +name=db$/);

    const json = await run(["events", "--json", ...dataArgs()], env);
    const events = json.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as EventLine);
    expect(events.map((e) => [e.vm, e.type, e.version])).toEqual([
      ["web", "vm.defined", 0],
      ["db", "vm.defined", 0],
    ]);
    expect(events[0]).toMatchObject({
      streamId: expect.stringMatching(/^vm-/),
      schemaVersion: 2 /* vm.defined keeps arguments order since schema 2 */,
      source: "library",
    });
    expect(events[0]!.checkpoint).toEqual({
      transactionId: expect.stringMatching(/^\d+$/),
      position: events[0]!.position,
    });

    const onlyDb = await run(["events", "--vm", "db", "--json", ...dataArgs()], env);
    expect(
      onlyDb.stdout
        .trim()
        .split("\n")
        .map((l) => (JSON.parse(l) as EventLine).vm),
    ).toEqual(["db"]);
    const after = await run(["events", "--from", String(events[0]!.position), "--json", ...dataArgs()], env);
    expect(
      after.stdout
        .trim()
        .split("\n")
        .map((l) => (JSON.parse(l) as EventLine).id),
    ).toEqual([events[1]!.id]);

    if (dialect === "pglite") return; // the error cases below do not depend on the store
    const missing = await run(["events", "--vm", "nosuch", ...dataArgs()], env);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/nosuch/);
    const bad = await run(["events", "--from", "-4", ...dataArgs()], env);
    expect(bad.code).toBe(3);
  });

  it("--follow streams new events until Ctrl-C, then exits 0", async () => {
    if (dialect === "pglite") {
      // The embedded store admits one process: the follower holds it, so nobody else can write.
      const follower = follow(["--json", ...dataArgs()], env);
      await follower.waitLines(2);
      // A valid config, so the only thing in the way is the store's lock.
      const config = join(home, "x.yaml");
      await writeFile(config, "name: x\nmemory: 64M\n");
      const blocked = await run(["add", config, ...dataArgs()], env);
      expect(blocked.stderr).toMatch(/STORE_LOCKED|is in use by pid \d+/);
      expect(blocked.code).toBe(1);
      expect(await follower.stop()).toBe(0);
      expect(follower.lines().length).toBe(2);
      // Once the follower lets go, the same command goes through.
      expect(await run(["add", config, ...dataArgs()], env)).toMatchObject({ code: 0 });
      return;
    }
    const follower = follow(["--vm", "web"], env);
    await follower.waitLines(1);
    const maqet = open();
    try {
      // Facts recorded by another process (this one), as a library would.
      const db = await maqet.status("db");
      expect(db.name).toBe("db");
      await maqet.remove("web");
    } finally {
      await maqet.close();
    }
    await follower.waitLines(2);
    expect(follower.lines()[1]).toMatch(/ web +vm\.removed/);
    expect(await follower.stop()).toBe(0);
    expect(follower.stderr()).toBe("");
    expect(follower.lines().length).toBe(2);
  });

  it("gives library callers the same lines (toEventLine) with VM names", async () => {
    const maqet = open();
    try {
      const seen: EventLine[] = [];
      await new Promise<void>((resolve, reject) =>
        maqet.subscribe({ follow: false }).subscribe({
          next: (m) => {
            if (m.kind === "event") seen.push(toEventLine(m));
          },
          error: reject,
          complete: resolve,
        }),
      );
      expect(seen.slice(0, 2).map((l) => l.vm)).toEqual(["web", "db"]);
    } finally {
      await maqet.close();
    }
  });
});
