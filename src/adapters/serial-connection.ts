/**
 * One attach to a VM's serial console, store-free: the bytes the guest prints, a way to type, and
 * how it ended. `read-write` connects to QEMU's console socket (`serial.sock`, see qemu-argv.ts)
 * and watches the writer seat (`console.lock`): a takeover by `--force` ends it with
 * `taken-over`. `read-only` follows `serial.log` from its end (QEMU logs everything the guest
 * prints, whoever is connected), so any number can watch; typing is ignored. Both end with
 * `vm-stopped` when QEMU goes (the socket closes, or the follower sees the process gone).
 *
 * @example
 * ```ts
 * const conn = await openSerialConnection(target, (bytes) => process.stdout.write(bytes));
 * conn.write(new TextEncoder().encode("uname -a\r"));
 * conn.close("detached");
 * console.log((await conn.ended).reason); // "detached"
 * ```
 */
import { lstat, stat } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import type { Subscription } from "rxjs";
import type { ConsoleHolder } from "../actors/console-seat.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { ConsoleDetachReason, ConsoleMode } from "../events/console-events.ts";
import { releaseConsoleLock, watchConsoleLock } from "./console-lock.ts";
import { followFile } from "./file-follower.ts";

export interface SerialTarget {
  vm: string;
  mode: ConsoleMode;
  session: string;
  /** QEMU's console socket. */
  socket: string;
  /** The serial log (read-only attaches follow it). */
  log: string;
  /** The writer seat's lock file. */
  lock: string;
  /** True once the VM's QEMU has exited (read-only attaches end then). */
  processGone(): Promise<boolean>;
  /** How often the seat and the log are looked at. Default 200 ms. */
  pollMs?: number;
}

export interface ConsoleEnd {
  reason: ConsoleDetachReason;
  message?: string;
  /** For `taken-over`: who took the seat. */
  by?: ConsoleHolder;
}

export interface ConsoleConnection {
  readonly mode: ConsoleMode;
  /** Types into the guest's serial port (ignored read-only). */
  write(bytes: Uint8Array): void;
  /** Ends the attach (idempotent; the first reason stays). */
  close(reason?: ConsoleDetachReason, message?: string): void;
  /** Resolves once the attach has ended and the seat (if held) is released. */
  readonly ended: Promise<ConsoleEnd>;
}

/** True when QEMU's console socket is there (a VM started by an older maqet has none). */
export async function isConsoleSocket(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isSocket();
  } catch {
    return false;
  }
}

/** Opens the attach; rejects (and releases a held seat) when QEMU's socket does not answer. */
export async function openSerialConnection(
  target: SerialTarget,
  onData: (bytes: Uint8Array) => void,
): Promise<ConsoleConnection> {
  return target.mode === "read-write" ? openWriter(target, onData) : openReader(target, onData);
}

async function openWriter(target: SerialTarget, onData: (bytes: Uint8Array) => void): Promise<ConsoleConnection> {
  let socket: Socket;
  try {
    socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(target.socket);
      s.once("connect", () => {
        s.off("error", reject);
        resolve(s);
      });
      s.once("error", reject);
    });
  } catch (error) {
    await releaseConsoleLock(target.lock, target.session);
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new MaqetError(
      "VM_INVALID_STATE",
      `Cannot connect to VM '${target.vm}' serial console at ${target.socket} (${code}). If the VM was started by an older maqet (before console sockets), restart it: \`maqet stop ${target.vm}\` then \`maqet start ${target.vm}\`.`,
      { cause: error, details: { vm: target.vm, socket: target.socket, errno: code } },
    );
  }
  let end: ConsoleEnd | undefined;
  let resolveEnded!: (end: ConsoleEnd) => void;
  const ended = new Promise<ConsoleEnd>((resolve) => {
    resolveEnded = resolve;
  });
  const finish = (next: ConsoleEnd): void => {
    if (end !== undefined) return;
    end = next;
    stopWatching();
    socket.destroy();
    const release = next.reason === "taken-over" ? Promise.resolve() : releaseConsoleLock(target.lock, target.session);
    void release.catch(() => undefined).then(() => resolveEnded(next));
  };
  const stopWatching = watchConsoleLock(
    target.lock,
    target.session,
    (by) => finish({ reason: "taken-over", ...(by ? { by } : {}) }),
    target.pollMs,
  );
  socket.on("data", (chunk: Buffer) => onData(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
  socket.on("error", (error: NodeJS.ErrnoException) => {
    // QEMU going away resets the connection: that is the VM stopping, not a console failure.
    if (error.code === "ECONNRESET" || error.code === "EPIPE") finish({ reason: "vm-stopped" });
    else finish({ reason: "error", message: error.message });
  });
  socket.on("close", () => finish({ reason: "vm-stopped" }));
  return {
    mode: "read-write",
    write: (bytes) => {
      if (end === undefined) socket.write(bytes);
    },
    close: (reason = "detached", message) => finish({ reason, ...(message ? { message } : {}) }),
    ended,
  };
}

async function openReader(target: SerialTarget, onData: (bytes: Uint8Array) => void): Promise<ConsoleConnection> {
  const encoder = new TextEncoder();
  // From the log's end as it is now (not at the follower's first look): what comes after the
  // attach returned is shown, what came before is not.
  const from = await stat(target.log).then(
    (s) => s.size,
    () => 0,
  );
  let end: ConsoleEnd | undefined;
  let resolveEnded!: (end: ConsoleEnd) => void;
  const ended = new Promise<ConsoleEnd>((resolve) => {
    resolveEnded = resolve;
  });
  const finish = (next: ConsoleEnd): void => {
    if (end !== undefined) return;
    end = next;
    subscription?.unsubscribe();
    resolveEnded(next);
  };
  let subscription: Subscription | undefined;
  subscription = followFile(target.log, {
    from,
    pollIntervalMs: target.pollMs ?? 100,
    isDone: () => target.processGone(),
  }).subscribe({
    next: (text) => onData(encoder.encode(text)),
    error: (error: unknown) => finish({ reason: "error", message: String((error as Error)?.message ?? error) }),
    complete: () => finish({ reason: "vm-stopped" }),
  });
  if (end !== undefined) subscription.unsubscribe();
  return {
    mode: "read-only",
    write: () => undefined,
    close: (reason = "detached", message) => finish({ reason, ...(message ? { message } : {}) }),
    ended,
  };
}
