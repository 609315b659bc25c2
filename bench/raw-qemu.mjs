// The baselines for the QEMU measures: QEMU spawned by hand and QMP spoken over a bare node:net
// socket, with no maqet code in the path. Deliberately minimal: one JSON line out, read lines
// until the reply, no ids, no timeouts beyond the connect deadline.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createConnection } from "node:net";

export const QEMU = "/usr/bin/qemu-system-x86_64";

/** Spawns QEMU with `args`; `exit` resolves with { code, signal } when it is gone. */
export function spawnQemu(args) {
  const child = spawn(QEMU, args, { stdio: "ignore" });
  const exit = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const spawned = new Promise((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  return { child, pid: child.pid, exit, spawned };
}

/** SIGKILL and wait for the exit; a no-op for a process already gone. */
export async function killAndWait(qemu) {
  if (qemu.child.exitCode === null && qemu.child.signalCode === null) qemu.child.kill("SIGKILL");
  await qemu.exit;
}

/**
 * Connects to a unix socket, retrying every `retryMs` while it is missing or refusing (QEMU has
 * not created or opened it yet), up to `timeoutMs`.
 */
export async function connectRetrying(socketPath, { retryMs = 5, timeoutMs = 10_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise((resolve, reject) => {
        const s = createConnection(socketPath);
        s.once("connect", () => {
          s.off("error", reject);
          resolve(s);
        });
        s.once("error", reject);
      });
    } catch (error) {
      if (!["ENOENT", "ECONNREFUSED"].includes(error.code) || Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, retryMs));
    }
  }
}

/**
 * Connects to a QMP socket, retrying every `retryMs` while it is missing or refusing (maqet's
 * client polls every 5 ms too), reads the greeting and sends `qmp_capabilities`.
 * Returns `{ greeting, execute(command, args?), close() }`.
 */
export async function rawQmpConnect(socketPath, { retryMs = 5, timeoutMs = 10_000 } = {}) {
  const socket = await connectRetrying(socketPath, { retryMs, timeoutMs });
  socket.setEncoding("utf8");
  let buffer = "";
  const waiting = []; // resolvers for the next non-event message, in send order
  socket.on("data", (chunk) => {
    buffer += chunk;
    for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.trim() === "") continue;
      const message = JSON.parse(line);
      if (message.event !== undefined) continue;
      waiting.shift()?.(message);
    }
  });
  const next = () => new Promise((resolve) => waiting.push(resolve));
  const greeting = await next();
  const execute = async (command, args) => {
    const reply = next();
    const request = args === undefined ? { execute: command } : { execute: command, arguments: args };
    socket.write(`${JSON.stringify(request)}\n`);
    const message = await reply;
    if (message.error) throw new Error(`QMP ${command}: ${message.error.class}: ${message.error.desc}`);
    return message.return;
  };
  await execute("qmp_capabilities");
  return {
    greeting,
    execute,
    close: () =>
      new Promise((resolve) => {
        socket.once("close", resolve);
        socket.end();
      }),
  };
}

/** The command line of a live process, as a list of words. */
export async function cmdlineOf(pid) {
  const { readFile } = await import("node:fs/promises");
  const raw = await readFile(`/proc/${pid}/cmdline`, "utf8");
  return raw.split("\0").slice(0, -1);
}

/** VmRSS of a live process in bytes, or undefined. */
export async function rssOf(pid) {
  const { readFile } = await import("node:fs/promises");
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return kb === undefined ? undefined : Number(kb) * 1024;
}

/** Pids of the QEMUs whose command line names a path under `dir` (a bench's runtime dir). */
export function qemuUnder(dir) {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (args[0]?.includes("qemu-system") && args.some((a) => a.includes(`${dir}/`))) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}
