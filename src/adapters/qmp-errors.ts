/**
 * The errors a QMP session gives, each with its code, its details and what to do about it:
 * a command QEMU refused ({@link QmpCommandError}, `QMP_ERROR`), a connection lost or closed
 * (`QMP_DISCONNECTED`), a reply that never came or a connect that took too long (`QMP_TIMEOUT`,
 * `TIMEOUT`), and what is not QMP (`QMP_PROTOCOL`).
 *
 * @example
 * ```ts
 * try { await qmp.execute("device_del", { id: "nic0" }); }
 * catch (e) { if (e instanceof QmpCommandError && e.errorClass === "DeviceNotFound") return; throw e; }
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";

/**
 * A command QEMU refused: code `QMP_ERROR`, with the QMP error class and description as fields
 * (and in `details` as `class`, `desc`, `command`).
 *
 * @example
 * ```ts
 * try { await qmp.execute("device_del", { id: "nic0" }); }
 * catch (e) { if (e instanceof QmpCommandError && e.errorClass === "DeviceNotFound") return; throw e; }
 * ```
 */
export class QmpCommandError extends MaqetError {
  /** The QMP error class, e.g. `GenericError`, `CommandNotFound`, `DeviceNotFound`. */
  readonly errorClass: string;
  /** QEMU's human-readable description; not stable, do not match on it. */
  readonly desc: string;
  readonly command: string;

  constructor(command: string, errorClass: string, desc: string, socketPath: string) {
    const fix =
      errorClass === "CommandNotFound"
        ? "This QEMU does not know the command: check its spelling and version (`query-commands` lists what it supports)."
        : "Check the command and its arguments against the QMP reference for this QEMU version.";
    super("QMP_ERROR", `QMP command '${command}' failed on ${socketPath}: ${errorClass}: ${desc}. ${fix}`, {
      details: { class: errorClass, desc, command, socketPath },
    });
    this.name = "QmpCommandError";
    this.errorClass = errorClass;
    this.desc = desc;
    this.command = command;
  }
}

/** The step a connect was at, for its timeout's message. */
export type ConnectStep =
  | "waiting for the socket to accept"
  | "waiting for the QMP greeting"
  | "negotiating capabilities";

/** `connect` took longer than `timeoutMs` at `step`. */
export function connectTimeoutError(
  socketPath: string,
  timeoutMs: number,
  step: ConnectStep,
  lastError: unknown,
): MaqetError {
  const last = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
  const fix =
    step === "waiting for the socket to accept"
      ? "Check that QEMU is running with `-qmp unix:<path>,server=on,wait=off` and read its log."
      : "QEMU serves one client per QMP socket: another client may hold it, or this is not a QMP socket.";
  const message = `Timed out after ${timeoutMs} ms connecting to QMP socket ${socketPath}, ${step}${last}. ${fix}`;
  return new MaqetError("TIMEOUT", message, { cause: lastError, details: { socketPath, timeoutMs, step } });
}

/** QEMU refused `qmp_capabilities`. */
export function negotiationError(socketPath: string, refusal: QmpCommandError): MaqetError {
  return new MaqetError(
    "QMP_PROTOCOL",
    `QMP negotiation failed on ${socketPath}: qmp_capabilities was refused (${refusal.errorClass}: ${refusal.desc}). The monitor may already be in command mode; reconnect to get a fresh session.`,
    { cause: refusal, details: { socketPath } },
  );
}

/** A command sent on a session already closed. */
export function sessionClosedError(socketPath: string, command: string, cause: unknown): MaqetError {
  return new MaqetError(
    "QMP_DISCONNECTED",
    `Cannot send QMP command '${command}': the session on ${socketPath} is closed. Connect again.`,
    { cause, details: { command, socketPath } },
  );
}

/** No reply to `command` within `timeoutMs`. */
export function commandTimeoutError(socketPath: string, command: string, timeoutMs: number): MaqetError {
  return new MaqetError(
    "QMP_TIMEOUT",
    `QMP command '${command}' on ${socketPath} got no reply within ${timeoutMs} ms. QEMU may be hung or busy: check the VM log, raise timeoutMs, or force-stop the VM.`,
    { details: { command, timeoutMs, socketPath } },
  );
}

/** An error without an id, attributed to the oldest command in flight. */
export function idlessError(socketPath: string, command: string, errorClass: string, desc: string): MaqetError {
  return new MaqetError(
    "QMP_PROTOCOL",
    `QEMU could not parse a request on ${socketPath} and answered without an id (${errorClass}: ${desc}); attributed to the oldest outstanding command '${command}'. This is a maqet bug: please report it with the command and arguments.`,
    { details: { class: errorClass, desc, command, socketPath } },
  );
}

/** The socket closed although nobody asked it to (no close, no `quit`, no SHUTDOWN). */
export function unexpectedCloseError(socketPath: string, socketError: Error | undefined): MaqetError {
  const why = socketError ? ` (${socketError.message})` : "";
  return new MaqetError(
    "QMP_DISCONNECTED",
    `QMP connection to ${socketPath} closed unexpectedly${why}. QEMU probably exited or crashed: check the VM log and its process.`,
    { cause: socketError, details: { socketPath } },
  );
}

/** The socket closed before QEMU's greeting. */
export function closedBeforeGreetingError(socketPath: string, cause: unknown): MaqetError {
  return new MaqetError(
    "QMP_DISCONNECTED",
    `QMP socket ${socketPath} closed before QEMU sent its greeting. Is it a QMP socket, and is QEMU still running? Check the VM log.`,
    { cause, details: { socketPath } },
  );
}

/** A pending `command` ended with the session: cancelled by our close, or the connection lost. */
export function disconnectedError(
  socketPath: string,
  command: string,
  cause: unknown,
  closeRequested: boolean,
): MaqetError {
  const message = closeRequested
    ? `QMP command '${command}' on ${socketPath} was cancelled: the session was closed by the caller.`
    : `QMP connection to ${socketPath} was lost while '${command}' waited for a reply. QEMU probably exited: check the VM log.`;
  return new MaqetError("QMP_DISCONNECTED", message, { cause, details: { command, socketPath } });
}

/** What arrived is not QMP. */
export function protocolError(socketPath: string, what: string, cause?: unknown): MaqetError {
  return new MaqetError(
    "QMP_PROTOCOL",
    `QMP protocol error on ${socketPath}: ${what}. Is this a QMP socket? Reconnect to recover.`,
    { cause, details: { socketPath } },
  );
}
