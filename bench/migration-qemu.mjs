// Raw-QEMU live migration on one host, for the migration measure (bench/migration.mjs) and the
// facts probe (bench/migration-facts.mjs): two QEMU processes with the same argv (the destination
// adds `-incoming defer -S`), spoken to over bare QMP sockets that keep the events, no maqet code.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ensureGuestBuilt } from "../test/fixtures/guest/build-guest.mjs";
import { connectRetrying, QEMU } from "./raw-qemu.mjs";

export { ensureGuestBuilt };

/**
 * The argv (without the binary) of a test-guest VM: q35, TCG (kernel guests need it here),
 * -nodefaults, serial to `serialPath`, QMP on `qmpPath`. `extra` is appended (a disk, say).
 */
export function guestArgv(guest, { memoryMiB, action = "counter", dirtyMiB, serialPath, qmpPath, extra = [] }) {
  const append = ["console=ttyS0", "quiet", `maqet.action=${action}`];
  if (dirtyMiB !== undefined) append.push(`maqet.dirty=${dirtyMiB}`);
  return [
    "-accel",
    "tcg",
    "-machine",
    "q35",
    "-m",
    `${memoryMiB}M`,
    "-nodefaults",
    "-display",
    "none",
    "-kernel",
    guest.kernel,
    "-initrd",
    guest.initrd,
    "-append",
    append.join(" "),
    "-serial",
    `file:${serialPath}`,
    "-qmp",
    `unix:${qmpPath},server=on,wait=off`,
    ...extra,
  ];
}

/** Spawns QEMU; `exit` resolves with { code, signal }; stderr is kept in `stderr()`. */
export function spawnQemu(args) {
  const child = spawn(QEMU, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const exit = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  return {
    child,
    pid: child.pid,
    exit,
    stderr: () => stderr,
    alive: () => child.exitCode === null && child.signalCode === null,
  };
}

/** SIGKILL (unless gone) and wait for the exit. */
export async function killQemu(qemu, signal = "SIGKILL") {
  if (qemu.alive()) qemu.child.kill(signal);
  return qemu.exit;
}

/**
 * A QMP connection that keeps events: `execute(cmd, args)` rejects on a QMP error (the error is
 * on `.qmp`), `events` lists every event seen with `at` (ms, this process's clock), and
 * `waitEvent(pred, timeoutMs)` resolves with the first event (seen or coming) matching `pred`.
 */
export async function qmpConnect(socketPath, { timeoutMs = 30_000 } = {}) {
  const socket = await connectRetrying(socketPath, { retryMs: 10, timeoutMs });
  socket.setEncoding("utf8");
  let buffer = "";
  const replies = [];
  const events = [];
  const eventWaiters = new Set();
  let closed = false;
  const closeWaiters = [];
  socket.on("data", (chunk) => {
    buffer += chunk;
    for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.trim() === "") continue;
      const message = JSON.parse(line);
      if (message.event !== undefined) {
        const event = { ...message, at: performance.now() };
        events.push(event);
        for (const w of eventWaiters) if (w.pred(event)) w.resolve(event);
        continue;
      }
      replies.shift()?.resolve(message);
    }
  });
  socket.on("error", () => undefined);
  socket.on("close", () => {
    closed = true;
    for (const r of replies.splice(0)) r.reject(new Error("QMP connection closed"));
    for (const w of eventWaiters) w.reject(new Error("QMP connection closed"));
    for (const c of closeWaiters.splice(0)) c();
  });
  const next = () => new Promise((resolve, reject) => replies.push({ resolve, reject }));
  const greeting = await next();
  const execute = async (command, args) => {
    if (closed) throw new Error(`QMP ${command}: connection closed`);
    const reply = next();
    socket.write(
      `${JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args })}\n`,
    );
    const message = await reply;
    if (message.error) {
      const error = new Error(`QMP ${command}: ${message.error.class}: ${message.error.desc}`);
      error.qmp = message.error;
      throw error;
    }
    return message.return;
  };
  const waitEvent = (pred, ms = 60_000) => {
    const seen = events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (e) => {
          clearTimeout(w.timer);
          eventWaiters.delete(w);
          resolve(e);
        },
        reject: (e) => {
          clearTimeout(w.timer);
          eventWaiters.delete(w);
          reject(e);
        },
      };
      w.timer = setTimeout(() => w.reject(new Error(`no matching QMP event within ${ms} ms`)), ms);
      eventWaiters.add(w);
    });
  };
  await execute("qmp_capabilities");
  return {
    greeting,
    execute,
    events,
    waitEvent,
    /** Resolves with the MIGRATION event of `status`. */
    migrationStatus: (status, ms) => waitEvent((e) => e.event === "MIGRATION" && e.data.status === status, ms),
    closed: () => closed,
    onClose: () => (closed ? Promise.resolve() : new Promise((r) => closeWaiters.push(r))),
    close: () =>
      closed
        ? Promise.resolve()
        : new Promise((resolve) => {
            socket.once("close", resolve);
            socket.end();
          }),
  };
}

/** The `MAQET-COUNT` values on a serial log, in order (a missing file reads as none). */
export async function countsOf(serialPath) {
  const text = await readFile(serialPath, "utf8").catch(() => "");
  return [...text.matchAll(/^MAQET-COUNT (\d+) uptime=([0-9.]+)\r?$/gm)].map((m) => Number(m[1]));
}

/** How many `MAQET-BOOT` lines a serial log has. */
export async function bootsOf(serialPath) {
  const text = await readFile(serialPath, "utf8").catch(() => "");
  return text.match(/^MAQET-BOOT /gm)?.length ?? 0;
}

/** Polls `check` every `everyMs` until it returns a truthy value (returned) or `ms` passes (throws). */
export async function until(check, ms, what, everyMs = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * One "host" of the pair: a directory with its serial log and QMP socket, and the QEMU started
 * there. `incoming` adds `-incoming defer -S`.
 */
export async function startSide(guest, dir, vm, { incoming = false } = {}) {
  const serialPath = join(dir, "serial.log");
  const qmpPath = join(dir, "qmp.sock");
  const args = guestArgv(guest, { ...vm, serialPath, qmpPath });
  if (incoming) args.push("-incoming", "defer", "-S");
  const qemu = spawnQemu(args);
  let qmp;
  try {
    qmp = await qmpConnect(qmpPath);
  } catch (error) {
    await killQemu(qemu);
    throw new Error(`QEMU did not open its QMP socket: ${error.message}; stderr: ${qemu.stderr().trim()}`);
  }
  return { dir, serialPath, qmpPath, qemu, qmp, args };
}
