/**
 * The interactive console's library and agent paths on fake-qemu (test/fixtures/fake-qemu.mjs:
 * a real process with real sockets, whose serial "guest" echoes what it gets and logs it), fast:
 * attach and type through QEMU's console socket, the log keeps recording, a second writer gets
 * CONSOLE_BUSY naming the first, a read-only watcher sees the output beside the writer,
 * `force` takes the seat over (the first is ended `taken-over`), a VM started without a console
 * socket (an older maqet) is told to restart; the same through the agent's upgraded route, with
 * the caller on the facts. The real guest and terminal are test/e2e/console-interactive.qemu.test.ts.
 */
import { mkdtemp, readFile, rm, unlink } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgentHandler } from "../../src/agent/agent-handler.ts";
import { createRemoteMaqet } from "../../src/client/remote-maqet.ts";
import { isMaqetError } from "../../src/errors/maqet-error.ts";
import { type ConsoleConnection, createMaqet, type Maqet } from "../../src/mod.ts";
import { waitFor } from "../support/cli-runner.ts";

const FAKE_QEMU = fileURLToPath(new URL("../fixtures/fake-qemu.mjs", import.meta.url));
const enc = (text: string) => new TextEncoder().encode(text);

/** An attach's output so far, as text. */
function collector() {
  let text = "";
  return { onData: (b: Uint8Array) => (text += new TextDecoder().decode(b)), text: () => text };
}

describe("console attach on fake-qemu (library and agent)", { timeout: 180_000 }, () => {
  let dir: string;
  let maqet: Maqet;
  let server: Server | undefined;
  const open: ConsoleConnection[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "maqet-console-attach-"));
    maqet = createMaqet({ dataDir: join(dir, "data"), runtimeDir: join(dir, "run"), env: { PATH: process.env.PATH } });
    await maqet.add({ name: "f", binary: FAKE_QEMU, accel: "tcg", memory: "32M" });
    await maqet.start("f");
  }, 120_000);
  afterAll(async () => {
    for (const conn of open) conn.close();
    server?.close();
    await maqet?.stop("f", { force: true }).catch(() => undefined);
    await maqet?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const consoleFacts = async () => (await maqet.history("f")).filter((e) => e.type.startsWith("vm.console-"));

  it("types through the socket, keeps the log, refuses a second writer, lets readers watch, and --force takes over", async () => {
    const a = await maqet.attachConsole("f");
    expect(a).toMatchObject({ vm: "f", mode: "read-write" });
    const aOut = collector();
    const aConn = await a.open(aOut.onData);
    open.push(aConn);

    const refused = await maqet.attachConsole("f").catch((e: unknown) => e);
    expect(isMaqetError(refused, "CONSOLE_BUSY")).toBe(true);
    expect((refused as Error).message).toMatch(
      new RegExp(
        `^VM 'f' serial console is held by \\S+ \\(uid \\d+, pid ${process.pid} on \\S+, via library\\) since `,
      ),
    );

    const watcher = await maqet.attachConsole("f", { readOnly: true });
    const wOut = collector();
    const wConn = await watcher.open(wOut.onData);
    open.push(wConn);
    wConn.write(enc("ignored\r")); // a reader's typing goes nowhere

    aConn.write(enc("ping-1\r"));
    await waitFor(async () => aOut.text().includes("ping-1\r"), 10_000, "the echo on the writer's socket");
    await waitFor(async () => wOut.text().includes("ping-1\r"), 10_000, "the reader following the log");
    const status = await maqet.status("f");
    const log = await readFile(join(status.runtimeDir!, "serial.log"), "utf8");
    expect(log).toBe("ping-1\r");

    const b = await maqet.attachConsole("f", { force: true });
    expect(b.takeover).toBe("forced");
    expect(b.takenOverFrom).toMatchObject({ session: a.session, pid: process.pid });
    const bOut = collector();
    const bConn = await b.open(bOut.onData);
    open.push(bConn);
    expect(await aConn.ended).toMatchObject({ reason: "taken-over", by: { session: b.session } });
    bConn.write(enc("ping-2\r"));
    await waitFor(async () => bOut.text().includes("ping-2\r"), 10_000, "the new writer's echo");
    expect(aOut.text()).not.toContain("ping-2");
    bConn.close();
    wConn.close();
    expect(await b.detached).toEqual({ reason: "detached" });
    await watcher.detached;
    await a.detached;

    const facts = (await consoleFacts()).map((e) =>
      `${e.type} ${(e.data as { mode: string }).mode} ${(e.data as { reason?: string }).reason ?? ""}`.trim(),
    );
    expect(facts.slice(0, 4)).toEqual([
      "vm.console-attached read-write",
      "vm.console-attached read-only",
      "vm.console-attached read-write",
      "vm.console-detached read-write taken-over",
    ]);
    // The two closes race each other to the store: both are there, in either order.
    expect(facts.slice(4).sort()).toEqual([
      "vm.console-detached read-only detached",
      "vm.console-detached read-write detached",
    ]);
    // The seat is free again.
    const again = await maqet.attachConsole("f");
    (await again.open(() => undefined)).close();
    await again.detached;
  });

  it("through the agent: the upgraded route, the caller on the facts, 409 CONSOLE_BUSY", async () => {
    const handler = createAgentHandler({ maqet, version: "test", host: "test-host", tcp: false });
    const socket = join(dir, "agent.sock");
    server = createServer(handler.handle).on("upgrade", handler.upgrade);
    await new Promise<void>((resolve) => server!.listen(socket, resolve));
    const alice = createRemoteMaqet({
      agent: socket,
      source: "cli",
      caller: { user: "alice", uid: 4001, pid: 777, host: "client-host" },
    });
    const bob = createRemoteMaqet({ agent: socket, source: "cli", caller: { user: "bob", pid: 888 } });

    const before = (await consoleFacts()).length;
    const a = await alice.attachConsole("f");
    expect(a).toMatchObject({ vm: "f", mode: "read-write" });
    const out = collector();
    const conn = await a.open(out.onData);
    conn.write(enc("via-agent\r"));
    await waitFor(async () => out.text().includes("via-agent\r"), 10_000, "the echo through the agent");

    const refused = await bob.attachConsole("f").catch((e: unknown) => e);
    expect(isMaqetError(refused, "CONSOLE_BUSY")).toBe(true);
    expect((refused as Error).message).toContain("held by alice (uid 4001, pid 777 on test-host, via cli)");

    const b = await bob.attachConsole("f", { force: true });
    expect(b.takenOverFrom).toMatchObject({ user: "alice", pid: 777 });
    const bConn = await b.open(() => undefined);
    await conn.ended; // the agent closed alice's attach
    await waitFor(async () => out.text().includes("[maqet: console taken over by bob (pid 888) with --force]"), 10_000);
    bConn.close();
    await waitFor(async () => (await consoleFacts()).length === before + 4, 10_000, "the agent to record bob's detach");
    const facts = (await consoleFacts()).slice(-4);
    expect(facts.map((e) => [e.type, e.actor?.user, (e.data as { reason?: string }).reason])).toEqual([
      ["vm.console-attached", "alice", undefined],
      ["vm.console-attached", "bob", undefined],
      ["vm.console-detached", "alice", "taken-over"],
      ["vm.console-detached", "bob", "detached"],
    ]);
    await alice.close();
    await bob.close();
  });

  it("a VM whose QEMU has no console socket (started by an older maqet) is told to restart; a stopped one to start", async () => {
    const status = await maqet.status("f");
    await unlink(join(status.runtimeDir!, "serial.sock"));
    const old = await maqet.attachConsole("f").catch((e: unknown) => e);
    expect(isMaqetError(old, "VM_INVALID_STATE")).toBe(true);
    expect((old as Error).message).toContain("it was started by an older maqet");
    expect((old as Error).message).toContain("`maqet stop f`, then `maqet start f`");
    await maqet.stop("f", { force: true });
    const stopped = await maqet.attachConsole("f").catch((e: unknown) => e);
    expect(isMaqetError(stopped, "VM_INVALID_STATE")).toBe(true);
    expect((stopped as Error).message).toMatch(/^VM 'f' is stopped/);
  });
});
