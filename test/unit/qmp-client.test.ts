import { afterEach, describe, expect, it } from "vitest";
import type { QmpEvent, QmpSession } from "../../src/actors/ports.ts";
import { createQmpConnector, QmpClient, QmpCommandError } from "../../src/adapters/qmp-client.ts";
import type { MaqetError } from "../../src/errors/maqet-error.ts";
import { FakeQmpServer, type FakeQmpServerOptions } from "../fixtures/fake-qmp-server.ts";

// Real unix sockets, so a few milliseconds of real time; every wait is bounded.
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options: FakeQmpServerOptions = {}) {
  const server = await FakeQmpServer.start(options);
  cleanups.push(() => server.close());
  const qmp = await createQmpConnector().connect(server.socketPath, { timeoutMs: 2_000 });
  cleanups.push(() => qmp.close());
  return { server, qmp };
}

/** Subscribes at once and exposes what arrived and whether events$ completed. */
function record(qmp: QmpSession) {
  const events: QmpEvent[] = [];
  let complete!: () => void;
  const completed = new Promise<void>((resolve) => {
    complete = resolve;
  });
  qmp.events$.subscribe({ next: (e) => events.push(e), complete });
  return { events, completed };
}

async function rejection(promise: Promise<unknown>): Promise<MaqetError> {
  try {
    await promise;
  } catch (e) {
    return e as MaqetError;
  }
  throw new Error("expected a rejection");
}

describe("QmpClient: connect", () => {
  it("parses the greeting and negotiates before resolving", async () => {
    const { server, qmp } = await setup();
    expect(qmp.greeting).toEqual({
      version: { qemu: { major: 7, minor: 2, micro: 22 }, package: "Debian 1:7.2+dfsg-7+deb12u18+b3" },
      capabilities: ["oob"],
    });
    const [connection] = server.connections;
    expect(connection?.received).toEqual([{ execute: "qmp_capabilities", id: expect.any(String) }]);
    expect(qmp.isClosed).toBe(false);
  });

  it("retries until the socket appears", async () => {
    const server = await FakeQmpServer.start({ listen: false });
    cleanups.push(() => server.close());
    const connecting = createQmpConnector().connect(server.socketPath, { timeoutMs: 2_000 });
    await new Promise((resolve) => setTimeout(resolve, 60));
    await server.listen();
    const qmp = await connecting;
    cleanups.push(() => qmp.close());
    expect(qmp.greeting.version.qemu.major).toBe(7);
  });

  it("fails with TIMEOUT when the socket never appears", async () => {
    const temp = FakeQmpServer.tempSocketPath();
    cleanups.push(temp.remove);
    const error = await rejection(createQmpConnector().connect(temp.socketPath, { timeoutMs: 50 }));
    expect(error).toBeMaqetError("TIMEOUT");
    expect(error.message).toContain(temp.socketPath);
    expect(error.message).toMatch(/ENOENT/);
    expect(error.details).toMatchObject({ timeoutMs: 50, step: "waiting for the socket to accept" });
  });

  it("fails with TIMEOUT naming the greeting when the server stays silent", async () => {
    const server = await FakeQmpServer.start({ greeting: null });
    cleanups.push(() => server.close());
    const error = await rejection(createQmpConnector().connect(server.socketPath, { timeoutMs: 50 }));
    expect(error).toBeMaqetError("TIMEOUT");
    expect(error.message).toMatch(/greeting.*another client may hold it/);
  });

  it("fails at once with QMP_DISCONNECTED when the path cannot be a socket", async () => {
    const error = await rejection(createQmpConnector().connect("/etc/passwd/qmp.sock", { timeoutMs: 5_000 }));
    expect(error).toBeMaqetError("QMP_DISCONNECTED");
    expect(error.message).toMatch(/ENOTDIR.*Check the path/);
  });

  it("refuses a path longer than a unix socket allows instead of retrying", async () => {
    const error = await rejection(createQmpConnector().connect(`/tmp/${"x".repeat(120)}.sock`, { timeoutMs: 5_000 }));
    expect(error).toBeMaqetError("INVALID_ARGUMENT");
    expect(error.message).toMatch(/107-byte limit/);
  });

  it("fails with QMP_DISCONNECTED when the peer hangs up before the greeting", async () => {
    const server = await FakeQmpServer.start({ greeting: null });
    cleanups.push(() => server.close());
    server.nextConnection().then((connection) => connection.destroy());
    const error = await rejection(createQmpConnector().connect(server.socketPath, { timeoutMs: 2_000 }));
    expect(error).toBeMaqetError("QMP_DISCONNECTED");
    expect(error.message).toMatch(/closed before QEMU sent its greeting/);
  });

  it("rejects a bad greeting with QMP_PROTOCOL", async () => {
    const server = await FakeQmpServer.start({ greeting: "(qemu) \r\n" });
    cleanups.push(() => server.close());
    const error = await rejection(createQmpConnector().connect(server.socketPath, { timeoutMs: 1_000 }));
    expect(error).toBeMaqetError("QMP_PROTOCOL");

    const server2 = await FakeQmpServer.start({ greeting: { hello: "world" } });
    cleanups.push(() => server2.close());
    const error2 = await rejection(createQmpConnector().connect(server2.socketPath, { timeoutMs: 1_000 }));
    expect(error2).toBeMaqetError("QMP_PROTOCOL");
    expect(error2.message).toMatch(/Bad QMP greeting/);
  });

  it("reports a refused qmp_capabilities as QMP_PROTOCOL", async () => {
    const server = await FakeQmpServer.start({ autoNegotiate: false });
    cleanups.push(() => server.close());
    const connecting = createQmpConnector().connect(server.socketPath, { timeoutMs: 1_000 });
    await (await server.nextCommand()).fail("CommandNotFound", "Capabilities negotiation is already complete");
    const error = await rejection(connecting);
    expect(error).toBeMaqetError("QMP_PROTOCOL");
    expect(error.message).toMatch(/negotiation failed/);
  });

  it("stops with the signal's reason when the caller aborts", async () => {
    const temp = FakeQmpServer.tempSocketPath();
    cleanups.push(temp.remove);
    const controller = new AbortController();
    const connecting = QmpClient.connect(temp.socketPath, { timeoutMs: 5_000, signal: controller.signal });
    setTimeout(() => controller.abort(new Error("user gave up")), 20);
    await expect(connecting).rejects.toThrow("user gave up");
  });
});

describe("QmpClient: execute", () => {
  it("correlates out-of-order replies by id", async () => {
    const { server, qmp } = await setup();
    const a = qmp.execute("query-a");
    const b = qmp.execute("query-b", { x: 1 });
    const c = qmp.execute("query-c");
    const [ca, cb, cc] = await server.nextCommands(3);
    expect(new Set([ca?.id, cb?.id, cc?.id]).size).toBe(3);
    expect(cb?.arguments).toEqual({ x: 1 });
    expect(ca?.connection.received.at(-3)).not.toHaveProperty("arguments");
    await cc?.reply("C");
    await ca?.reply({ a: true });
    await cb?.reply(["B"]);
    expect(await Promise.all([a, b, c])).toEqual([{ a: true }, ["B"], "C"]);
  });

  it("turns an error reply into a QmpCommandError with class and desc", async () => {
    const { server, qmp } = await setup();
    const pending = qmp.execute("no-such-command");
    await (await server.nextCommand()).fail("CommandNotFound", "The command no-such-command has not been found");
    const error = await rejection(pending);
    expect(error).toBeInstanceOf(QmpCommandError);
    expect(error).toBeMaqetError("QMP_ERROR");
    expect(error).toMatchObject({ errorClass: "CommandNotFound", command: "no-such-command" });
    expect(error.details).toMatchObject({ class: "CommandNotFound", command: "no-such-command" });
    expect(error.message).toContain(server.socketPath);
  });

  it("times out with QMP_TIMEOUT and drops the late reply", async () => {
    const { server, qmp } = await setup();
    const slow = qmp.execute("query-slow", undefined, { timeoutMs: 20 });
    const command = await server.nextCommand();
    const error = await rejection(slow);
    expect(error).toBeMaqetError("QMP_TIMEOUT");
    expect(error.details).toMatchObject({ command: "query-slow", timeoutMs: 20 });
    await command.reply("too late");
    const next = qmp.execute("query-fast");
    await (await server.nextCommand()).reply("fast");
    expect(await next).toBe("fast");
  });

  it("rejects with the abort reason and drops the late reply", async () => {
    const { server, qmp } = await setup();
    const controller = new AbortController();
    const pending = qmp.execute("query-a", undefined, { signal: controller.signal });
    const command = await server.nextCommand();
    controller.abort(new Error("stop waiting"));
    await expect(pending).rejects.toThrow("stop waiting");
    await command.reply("late");
    await expect(qmp.execute("query-b", undefined, { signal: AbortSignal.abort("already") })).rejects.toBe("already");
    const next = qmp.execute("query-c");
    await (await server.nextCommand()).reply("c");
    expect(await next).toBe("c");
  });

  it("ignores replies with unknown ids", async () => {
    const { server, qmp } = await setup();
    const pending = qmp.execute("query-a");
    const command = await server.nextCommand();
    await command.connection.send({ return: "stray", id: "somebody-else" });
    await command.connection.send({ return: "no id" });
    await command.reply("mine");
    expect(await pending).toBe("mine");
  });

  it("attributes an id-less error to the oldest outstanding call", async () => {
    const { server, qmp } = await setup();
    const first = qmp.execute("query-a");
    const second = qmp.execute("query-b");
    const [, cb] = await server.nextCommands(2);
    await cb?.connection.send({ error: { class: "GenericError", desc: "JSON parse error, missing value" } });
    const error = await rejection(first);
    expect(error).toBeMaqetError("QMP_PROTOCOL");
    expect(error.details).toMatchObject({ command: "query-a", desc: "JSON parse error, missing value" });
    await cb?.reply("b");
    expect(await second).toBe("b");
  });

  it("reads replies written byte by byte with LF endings and split UTF-8", async () => {
    const { server, qmp } = await setup({ byteByByte: true, lineEnding: "\n" });
    const pending = qmp.execute("query-name");
    await (await server.nextCommand()).reply({ name: "café → 😀" });
    expect(await pending).toEqual({ name: "café → 😀" });
  });
});

describe("QmpClient: events", () => {
  it("delivers events in order to every subscriber", async () => {
    const { server, qmp } = await setup();
    const one = record(qmp);
    const two = record(qmp);
    const pending = qmp.execute("stop");
    const command = await server.nextCommand();
    await command.reply();
    await command.connection.event("STOP");
    await command.connection.event("RESUME");
    await command.connection.event("RESET", { guest: false, reason: "host-qmp-system-reset" });
    await pending;
    // A reply sent after the events is read after them too.
    const sync = qmp.execute("sync");
    await (await server.nextCommand()).reply();
    await sync;
    const names = ["STOP", "RESUME", "RESET"];
    expect(one.events.map((e) => e.event)).toEqual(names);
    expect(two.events.map((e) => e.event)).toEqual(names);
    expect(one.events[2]).toEqual({
      timestamp: { seconds: 1795304583, microseconds: 571979 },
      event: "RESET",
      data: { guest: false, reason: "host-qmp-system-reset" },
    });
  });

  it("keeps events that arrive together with the negotiation reply", async () => {
    const server = await FakeQmpServer.start({ autoNegotiate: false });
    cleanups.push(() => server.close());
    const connecting = createQmpConnector().connect(server.socketPath, { timeoutMs: 1_000 });
    const caps = await server.nextCommand();
    await caps.connection.sendRaw(
      `${JSON.stringify({ return: {}, id: caps.id })}\r\n{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESUME"}\r\n`,
    );
    const qmp = await connecting;
    cleanups.push(() => qmp.close());
    const seen = record(qmp);
    await caps.connection.end();
    await seen.completed;
    expect(seen.events.map((e) => e.event)).toEqual(["RESUME"]);
  });
});

describe("QmpClient: disconnect and close", () => {
  it("rejects every pending call with QMP_DISCONNECTED and completes events$ when the peer drops", async () => {
    const { server, qmp } = await setup();
    const seen = record(qmp);
    const a = qmp.execute("query-a");
    const b = qmp.execute("query-b");
    const [ca] = await server.nextCommands(2);
    ca?.connection.destroy();
    const [ea, eb] = await Promise.all([rejection(a), rejection(b)]);
    expect(ea).toBeMaqetError("QMP_DISCONNECTED");
    expect(ea.details).toMatchObject({ command: "query-a" });
    expect(eb).toBeMaqetError("QMP_DISCONNECTED");
    await seen.completed;
    const info = await qmp.closed;
    expect(info.error).toBeMaqetError("QMP_DISCONNECTED");
    expect(qmp.isClosed).toBe(true);
    const after = await rejection(qmp.execute("query-status"));
    expect(after).toBeMaqetError("QMP_DISCONNECTED");
    expect(after.message).toMatch(/is closed. Connect again/);
  });

  it("closes with QMP_PROTOCOL on an unparseable line", async () => {
    const { server, qmp } = await setup();
    const pending = qmp.execute("query-a");
    const command = await server.nextCommand();
    await command.connection.sendRaw("this is not json\r\n");
    const error = await rejection(pending);
    expect(error).toBeMaqetError("QMP_DISCONNECTED");
    expect((await qmp.closed).error).toBeMaqetError("QMP_PROTOCOL");
  });

  it("resolves quit when QEMU closes the socket without replying", async () => {
    const { server, qmp } = await setup();
    const seen = record(qmp);
    const quitting = qmp.execute("quit");
    const command = await server.nextCommand();
    expect(command.execute).toBe("quit");
    await command.connection.event("SHUTDOWN", { guest: false, reason: "host-qmp-quit" });
    await command.connection.end();
    expect(await quitting).toEqual({});
    await seen.completed;
    expect(seen.events.map((e) => e.event)).toEqual(["SHUTDOWN"]);
    expect(await qmp.closed).toEqual({});
  });

  it("resolves quit with its reply when QEMU answers before closing", async () => {
    const { server, qmp } = await setup();
    const quitting = qmp.execute("quit");
    const command = await server.nextCommand();
    await command.reply();
    command.connection.destroy();
    expect(await quitting).toEqual({});
    expect(await qmp.closed).toEqual({});
  });

  it("swallows EPIPE when writing after QEMU shut down", async () => {
    const { server, qmp } = await setup();
    const first = qmp.execute("query-a");
    const command = await server.nextCommand();
    await command.connection.event("SHUTDOWN", { guest: true, reason: "guest-shutdown" });
    await command.connection.end();
    // Keep writing while the close is in flight: EPIPE or a closed-session rejection, never a crash.
    const writes = Array.from({ length: 20 }, () => qmp.execute("query-status").catch((e: unknown) => e));
    const results = await Promise.all(writes);
    for (const result of results) expect(result).toBeMaqetError("QMP_DISCONNECTED");
    expect(await rejection(first)).toBeMaqetError("QMP_DISCONNECTED");
    // SHUTDOWN announced the exit: not an unexpected close.
    expect(await qmp.closed).toEqual({});
  });

  it("swallows EPIPE from a write racing QEMU's exit, and resolves quit", async () => {
    const { server, qmp } = await setup();
    const probe = qmp.execute("query-a");
    const command = await server.nextCommand();
    await command.connection.event("SHUTDOWN", { guest: false, reason: "host-signal" });
    await command.reply();
    await probe;
    // The peer's fd is gone before our socket has seen EOF: these writes fail with EPIPE.
    command.connection.destroy();
    const status = qmp.execute("query-status").catch((e: unknown) => e);
    const quit = qmp.execute("quit");
    expect(await status).toBeMaqetError("QMP_DISCONNECTED");
    expect(await quit).toEqual({});
    expect(await qmp.closed).toEqual({});
  });

  it("close() is idempotent, rejects pending calls and completes events$", async () => {
    const { server, qmp } = await setup();
    const seen = record(qmp);
    const pending = rejection(qmp.execute("query-a"));
    await server.nextCommand();
    await Promise.all([qmp.close(), qmp.close()]);
    await qmp.close();
    const error = await pending;
    expect(error).toBeMaqetError("QMP_DISCONNECTED");
    expect(error.message).toMatch(/closed by the caller/);
    await seen.completed;
    expect(await qmp.closed).toEqual({});
    expect(qmp.isClosed).toBe(true);
  });
});
