/**
 * The destination side of a live migration (src/actors/migration/incoming-migrations.ts) with
 * the fake QEMU of fake-ports.ts, whose QMP session here also answers the incoming commands.
 */
import { describe, expect, it } from "vitest";
import { IncomingMigrations, SAME_HOST_SUFFIX } from "../../src/actors/migration/incoming-migrations.ts";
import type { VmConfig } from "../../src/config/vm-config.ts";
import { MaqetError } from "../../src/errors/maqet-error.ts";
import { createFakeWorld, type FakeQemu, FakeSession, type FakeWorld } from "../support/fake-ports.ts";

const config: VmConfig = { accel: "tcg", memory: "64M", args: [], arguments: [], storage: [] };
const VM = "0b7c";

/** An incoming QEMU: `inmigrate` until `arrive()`, then paused (-S) until `cont`. */
class IncomingSession extends FakeSession {
  listenPort: number | undefined = 45123;
  readonly calls: Array<{ command: string; args?: Record<string, unknown> }> = [];

  override async execute<T>(command: string, args?: Record<string, unknown>): Promise<T> {
    this.calls.push({ command, args });
    switch (command) {
      case "query-kvm":
        return { enabled: false, present: false } as T;
      case "migrate-set-capabilities":
        return {} as T;
      case "migrate-incoming":
        this.qemu.status = "inmigrate";
        return {} as T;
      case "query-migrate":
        return (
          this.listenPort === undefined
            ? { status: "setup" }
            : {
                status: "setup",
                "socket-address": [{ type: "inet", host: "127.0.0.1", port: String(this.listenPort) }],
              }
        ) as T;
      default:
        return super.execute<T>(command);
    }
  }
}

function setup(address?: string) {
  const world = createFakeWorld();
  const sessions: IncomingSession[] = [];
  let listenPort: number | undefined = 45123;
  world.ports.qmp = {
    connect: async (socketPath) => {
      const q = world.qemus.find((x) => x.alive && socketPath.includes(x.marker));
      if (!q) throw new MaqetError("TIMEOUT", `no QMP at ${socketPath}`);
      const s = new IncomingSession(q);
      s.listenPort = listenPort;
      q.sessions.push(s);
      sessions.push(s);
      return s;
    },
  };
  const incoming = new IncomingMigrations(world.ports, "lab2", address);
  return {
    world,
    incoming,
    sessions,
    noPort: () => {
      listenPort = undefined;
    },
  };
}

const qemuOf = (world: FakeWorld): FakeQemu => world.qemus.at(-1)!;
const prepare = (incoming: IncomingMigrations, extra: { sourceRuntimeDir?: string } = {}) =>
  incoming.prepare({ migrationId: "m-1", vmId: VM, name: "web", config, ...extra });

describe("IncomingMigrations", () => {
  it("prepare starts QEMU with -incoming defer, paused, listening; names it as the migration's target", async () => {
    const { world, incoming, sessions } = setup("10.0.0.2");
    const prepared = await prepare(incoming);
    const q = qemuOf(world);
    expect(prepared.uri).toBe("tcp:10.0.0.2:45123");
    expect(prepared.target).toMatchObject({
      host: "lab2",
      pid: q.pid,
      runtimeDir: `/run/maqet/${VM}`,
      qmpSocket: expect.stringContaining(`/run/maqet/${VM}/`),
      binary: "/usr/bin/qemu-system-x86_64",
    });
    expect(prepared.target.argv.slice(-2)).toEqual(["-incoming", "defer"]);
    const commands = sessions[0]!.calls.map((c) => c.command);
    expect(commands).not.toContain("cont");
    expect(sessions[0]!.calls.find((c) => c.command === "migrate-incoming")?.args).toEqual({ uri: "tcp:10.0.0.2:0" });
    expect(sessions[0]!.calls.find((c) => c.command === "migrate-set-capabilities")?.args).toMatchObject({
      capabilities: expect.arrayContaining([{ capability: "pause-before-switchover", state: true }]),
    });
    expect(incoming.pending).toEqual(["m-1"]);
    expect(incoming.entries()).toEqual([{ migrationId: "m-1", vmId: VM, pid: q.pid, since: world.clock.now() }]);
  });

  it("listens on loopback by default and puts an IPv6 address in brackets", async () => {
    expect((await prepare(setup().incoming)).uri).toBe("tcp:127.0.0.1:45123");
    expect((await prepare(setup("fd00::2").incoming)).uri).toBe("tcp:[fd00::2]:45123");
  });

  it("a source on the same host keeps its runtime directory: the target takes <vmId>.m", async () => {
    const { incoming } = setup();
    const prepared = await prepare(incoming, { sourceRuntimeDir: `/run/maqet/${VM}` });
    expect(prepared.target.runtimeDir).toBe(`/run/maqet/${VM}${SAME_HOST_SUFFIX}`);
  });

  it("a QEMU that does not say where it listens is killed and the prepare fails (MIGRATION_FAILED)", async () => {
    const { world, incoming, noPort } = setup();
    noPort();
    await expect(prepare(incoming)).rejects.toBeMaqetError("MIGRATION_FAILED");
    expect(qemuOf(world).signals).toEqual(["SIGKILL"]);
    expect(qemuOf(world).alive).toBe(false);
    expect(incoming.pending).toEqual([]);
  });

  it("finish with timeoutMs 0 only reports whether the state has arrived; once it has: cont, session let go, forgotten", async () => {
    const { world, incoming, sessions } = setup();
    await prepare(incoming);
    const q = qemuOf(world);
    expect(await incoming.finish({ migrationId: "m-1", resume: true, timeoutMs: 0 })).toEqual({
      resumed: false,
      arrived: false,
    });
    expect(incoming.pending).toEqual(["m-1"]);
    q.status = "paused"; // the whole state is in (-S keeps it paused)
    expect(await incoming.finish({ migrationId: "m-1", resume: true })).toEqual({ resumed: true, arrived: true });
    expect(q.status).toBe("running");
    expect(sessions[0]!.isClosed).toBe(true);
    expect(q.alive).toBe(true);
    expect(incoming.pending).toEqual([]);
  });

  it("finish waits for the state while inmigrate (on the clock), and leaves a guest that did not run paused", async () => {
    const { world, incoming } = setup();
    await prepare(incoming);
    const q = qemuOf(world);
    const t0 = world.clock.now();
    let polls = 0;
    const session = q.sessions[0]!;
    const execute = session.execute.bind(session);
    session.execute = async <T>(command: string, args?: Record<string, unknown>): Promise<T> => {
      if (command === "query-status" && ++polls === 4) q.status = "paused";
      return (execute as (c: string, a?: Record<string, unknown>) => Promise<T>)(command, args);
    };
    expect(await incoming.finish({ migrationId: "m-1", resume: false })).toEqual({ resumed: false, arrived: true });
    expect(q.status).toBe("paused");
    expect(q.executed).not.toContain("cont");
    expect(world.clock.now()).toBeGreaterThan(t0);
  });

  it("finish gives up with TIMEOUT when the state does not arrive; the QEMU stays pending", async () => {
    const { world, incoming } = setup();
    await prepare(incoming);
    const t0 = world.clock.now();
    await expect(incoming.finish({ migrationId: "m-1", resume: true, timeoutMs: 1000 })).rejects.toBeMaqetError(
      "TIMEOUT",
    );
    expect(world.clock.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(incoming.pending).toEqual(["m-1"]);
  });

  it("finish of a migration it does not hold: MIGRATION_NOT_RUNNING", async () => {
    const { incoming } = setup();
    await expect(incoming.finish({ migrationId: "nope", resume: true })).rejects.toBeMaqetError(
      "MIGRATION_NOT_RUNNING",
      { migrationId: "nope", host: "lab2" },
    );
  });

  it("abort kills the incoming QEMU and forgets it; an unknown one is not aborted", async () => {
    const { world, incoming } = setup();
    await prepare(incoming);
    expect(await incoming.abort({ migrationId: "m-1" })).toEqual({ aborted: true });
    expect(qemuOf(world).signals).toEqual(["SIGKILL"]);
    expect(incoming.pending).toEqual([]);
    expect(await incoming.abort({ migrationId: "m-1" })).toEqual({ aborted: false });
  });

  it("an incoming QEMU that exits by itself (its source went away) is forgotten", async () => {
    const { world, incoming } = setup();
    await prepare(incoming);
    qemuOf(world).die({ code: 1, signal: null });
    await new Promise((resolve) => setImmediate(resolve));
    expect(incoming.pending).toEqual([]);
  });

  it("close lets go of the sessions and leaves the QEMUs running (crash-only)", async () => {
    const { world, incoming, sessions } = setup();
    await prepare(incoming);
    await incoming.close();
    expect(sessions[0]!.isClosed).toBe(true);
    expect(qemuOf(world).alive).toBe(true);
    expect(incoming.pending).toEqual([]);
  });
});
