/**
 * `maqet console VM -i` at the terminal: the user's keys go to the guest's serial port, what the
 * guest prints comes back, byte for byte, until Ctrl-] (virsh's escape key) detaches, the VM
 * stops, the seat is taken over, or a signal (SIGTERM, SIGHUP) ends it. The terminal is in raw
 * mode while attached (so Ctrl-C, Ctrl-Z, arrow keys reach the guest) and is put back to how it
 * was on every way out: detach, end, error, signal, and, as a last resort, process exit.
 * Works on any {@link ConsoleConnection}: QEMU's socket in-process, or the agent's upgraded stream.
 * Imports nothing heavy (the agent path of the CLI loads it).
 *
 * @example
 * ```ts
 * const end = await runConsoleTerminal(conn, { vm: "web", mode: "read-write" }, terminalIo());
 * end.reason; // "detached"
 * ```
 */
import type { ConsoleConnection, ConsoleEnd } from "../adapters/serial-connection.ts";
import { EscapeScanner } from "./console-escape.ts";

/** How long a possible start of an escape sequence is held back before it is sent as typed. */
const ESCAPE_FLUSH_MS = 30;
/** With stdin not a terminal: how long output may still come after its end before detaching. */
const EOF_GRACE_MS = 1000;

export interface ConsoleTerminalIo {
  stdin: Pick<NodeJS.ReadStream, "on" | "off" | "resume" | "pause"> & {
    isTTY?: boolean;
    isRaw?: boolean;
    setRawMode?: (raw: boolean) => unknown;
  };
  /** Writes the guest's bytes as they are. */
  write(bytes: Uint8Array): void;
  /** One line for the user (the hint, why it ended), outside the guest's output. */
  note(text: string): void;
  signals: Pick<NodeJS.Process, "on" | "off">;
}

export interface ConsoleAbout {
  vm: string;
  mode: "read-write" | "read-only";
  takeover?: "forced" | "stale";
  takenOverFrom?: { user?: string; pid?: number; holderPid?: number; host?: string };
}

/** The terminal of this process. */
export function processTerminal(): ConsoleTerminalIo {
  return {
    stdin: process.stdin,
    write: (bytes) => process.stdout.write(bytes),
    note: (text) => process.stderr.write(`${text}\r\n`),
    signals: process,
  };
}

/** The one-line hint printed on attach (as virsh prints "Escape character is ^]"). */
export function attachHint(about: ConsoleAbout): string {
  const mode = about.mode === "read-only" ? " (read-only: typing is not sent)" : "";
  return `Connected to VM '${about.vm}' serial console${mode}. Escape character is ^]`;
}

/** Runs the attach until it ends; resolves with how it ended, the terminal restored. */
export async function runConsoleTerminal(
  conn: ConsoleConnection,
  about: ConsoleAbout,
  io: ConsoleTerminalIo,
): Promise<ConsoleEnd> {
  const { stdin } = io;
  const scanner = new EscapeScanner();
  const wasRaw = stdin.isRaw === true;
  const tty = stdin.isTTY === true && typeof stdin.setRawMode === "function";
  const restore = (): void => {
    if (tty) stdin.setRawMode!(wasRaw);
  };
  let flushTimer: ReturnType<typeof setTimeout> | undefined;
  let eofTimer: ReturnType<typeof setTimeout> | undefined;

  const onInput = (chunk: Buffer | string): void => {
    const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : new Uint8Array(chunk);
    clearTimeout(flushTimer);
    const scan = scanner.push(bytes);
    if (scan.forward.length > 0) conn.write(scan.forward);
    if (scan.detach) {
      conn.close("detached");
      return;
    }
    if (scan.pending) {
      flushTimer = setTimeout(() => {
        const held = scanner.flush();
        if (held.length > 0) conn.write(held);
      }, ESCAPE_FLUSH_MS);
    }
  };
  const onEnd = (): void => {
    eofTimer = setTimeout(() => conn.close("detached"), EOF_GRACE_MS);
  };
  const onSignal = (): void => conn.close("signal");

  if (about.takeover === "forced" && about.takenOverFrom) {
    const from = about.takenOverFrom;
    io.note(`maqet: took the console over from ${from.user ?? "someone"} (pid ${from.pid ?? from.holderPid ?? "?"}).`);
  }
  io.note(attachHint(about));
  process.once("exit", restore);
  try {
    if (tty) stdin.setRawMode!(true);
    stdin.on("data", onInput);
    stdin.on("end", onEnd);
    for (const signal of ["SIGTERM", "SIGHUP", "SIGINT"] as const) io.signals.on(signal, onSignal);
    stdin.resume();
    return await conn.ended;
  } finally {
    clearTimeout(flushTimer);
    clearTimeout(eofTimer);
    stdin.off("data", onInput);
    stdin.off("end", onEnd);
    for (const signal of ["SIGTERM", "SIGHUP", "SIGINT"] as const) io.signals.off(signal, onSignal);
    restore();
    process.off("exit", restore);
    stdin.pause();
  }
}

/** The line printed once the attach ended (the guest's output may have left the cursor anywhere). */
export function endNote(vm: string, end: ConsoleEnd): string {
  switch (end.reason) {
    case "detached":
      return `\r\nmaqet: detached from VM '${vm}' serial console; the VM keeps running.`;
    case "taken-over": {
      const by = end.by;
      const who = by
        ? `${by.user ?? "someone"} (pid ${by.pid ?? by.holderPid}) with --force`
        : "another attach with --force";
      return `\r\nmaqet: VM '${vm}' serial console was taken over by ${who}; detached.`;
    }
    case "vm-stopped":
      return `\r\nmaqet: VM '${vm}' stopped; its serial console closed.`;
    case "signal":
      return `\r\nmaqet: detached from VM '${vm}' serial console (signal); the VM keeps running.`;
    case "disconnected":
      // Through the agent: it said why in the stream, just before closing.
      return `\r\nmaqet: the agent closed VM '${vm}' serial console; the VM keeps running unless it stopped.`;
    default:
      return `\r\nmaqet: VM '${vm}' serial console failed: ${end.message ?? "unknown error"}.`;
  }
}
