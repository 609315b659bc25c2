/**
 * A QMP client over a unix socket: the `QmpConnector`/`QmpSession` ports backed by `node:net`.
 *
 * Choices worth knowing (see also /work/shared/reference/qemu-and-vm-managers.md §2):
 * - `oob` is not enabled, so QEMU answers in-band commands strictly in order. Replies are still
 *   matched by `id`; a reply whose id we do not know (or no longer wait for: timed out, aborted)
 *   is dropped.
 * - An error without `id` is QEMU failing to parse a request before reading its id. Since
 *   replies come in order, it belongs to the oldest request still in flight: that call rejects
 *   with `QMP_PROTOCOL` and the connection stays up (qemu.qmp drops the connection instead; we
 *   keep the VM's monitor, since one bad request does not make the others wrong).
 * - `quit` resolves when its reply arrives or when the socket closes after it was sent, because
 *   QEMU may exit before replying. EPIPE/ECONNRESET are always caught and turned into a closed
 *   session; nothing here can raise an unhandled error or rejection.
 * - A close is "expected" (no `closed.error`) after our own `close()`, after `quit` was sent,
 *   or after a SHUTDOWN event (QEMU exits on shutdown unless run with `-no-shutdown`).
 * - An aborted call or connect rejects with `signal.reason`, as `fetch` does.
 *
 * Dialing the socket is in qmp-dial.ts, the requests in flight in qmp-inflight.ts, reading the
 * greeting and errors in qmp-messages.ts, the errors this session gives in qmp-errors.ts.
 */
import type { Socket } from "node:net";
import { type Observable, Subject } from "rxjs";
import type {
  QmpCloseInfo,
  QmpConnectOptions,
  QmpConnector,
  QmpEvent,
  QmpExecuteOptions,
  QmpGreeting,
  QmpSession,
} from "../actors/ports.ts";
import { isMaqetError, MaqetError } from "../errors/maqet-error.ts";
import { openUnixSocket } from "./qmp-dial.ts";
import {
  type ConnectStep,
  closedBeforeGreetingError,
  commandTimeoutError,
  connectTimeoutError,
  disconnectedError,
  negotiationError,
  protocolError,
  QmpCommandError,
  sessionClosedError,
  unexpectedCloseError,
} from "./qmp-errors.ts";
import { QmpInflight } from "./qmp-inflight.ts";
import { QmpLineSplitter } from "./qmp-line-splitter.ts";
import { parseGreeting } from "./qmp-messages.ts";

export { QmpCommandError } from "./qmp-errors.ts";

const DEFAULT_QMP_TIMEOUT_MS = 30_000;
const DEFAULT_QMP_CONNECT_TIMEOUT_MS = 10_000;
/** QEMU creates its socket ~25 ms after spawn; polling every 5 ms costs nothing. */
const DEFAULT_QMP_RETRY_INTERVAL_MS = 5;
/** setTimeout silently turns longer delays into 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Options for {@link QmpClient.connect} and {@link createQmpConnector}.
 *
 * @example
 * ```ts
 * const connector = createQmpConnector({ defaultTimeoutMs: 10_000, connectTimeoutMs: 5_000 });
 * ```
 */
export interface QmpClientOptions {
  /** Reply timeout for `execute` calls that pass none (default 30 s). */
  defaultTimeoutMs?: number;
  /** Connect timeout when `connect` is given none (default 10 s): socket, greeting and negotiation. */
  connectTimeoutMs?: number;
  /** Delay between connect attempts while the socket is missing or refusing (default 5 ms). */
  retryIntervalMs?: number;
  /** Longest QMP line accepted (default 16 MiB). */
  maxLineBytes?: number;
}

type Phase = "greeting" | "ready" | "closed";

/**
 * A negotiated QMP session on a unix socket. Get one with {@link QmpClient.connect} or through
 * {@link createQmpConnector}.
 *
 * @example
 * ```ts
 * const qmp = await QmpClient.connect("/run/maqet/web/qmp.sock", { timeoutMs: 5_000 });
 * qmp.events$.subscribe((e) => console.log(e.event));
 * console.log(await qmp.execute("query-status")); // { status: "running", running: true, ... }
 * await qmp.execute("quit");
 * ```
 */
export class QmpClient implements QmpSession {
  readonly socketPath: string;
  readonly events$: Observable<QmpEvent>;
  readonly closed: Promise<QmpCloseInfo>;

  readonly #socket: Socket;
  readonly #splitter: QmpLineSplitter;
  readonly #defaultTimeoutMs: number;
  readonly #events = new Subject<QmpEvent>();
  readonly #inflight: QmpInflight;
  #phase: Phase = "greeting";
  #greeting: QmpGreeting | undefined;
  readonly #greetingReceived: Promise<QmpGreeting>;
  #settleGreeting!: { resolve(g: QmpGreeting): void; reject(e: unknown): void };
  /** Events are held until the session is handed out, so the first subscriber misses none. */
  #heldEvents: QmpEvent[] | undefined = [];
  #closeInfo: QmpCloseInfo | undefined;
  #resolveClosed!: (info: QmpCloseInfo) => void;
  #socketError: Error | undefined;
  #closeRequested = false;
  #quitSent = false;
  #shutdownSeen = false;

  private constructor(socket: Socket, socketPath: string, options: QmpClientOptions) {
    this.#socket = socket;
    this.socketPath = socketPath;
    this.#inflight = new QmpInflight(socketPath);
    this.#defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_QMP_TIMEOUT_MS;
    this.#splitter = new QmpLineSplitter({ maxLineBytes: options.maxLineBytes });
    this.events$ = this.#events.asObservable();
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.#greetingReceived = new Promise<QmpGreeting>((resolve, reject) => {
      this.#settleGreeting = { resolve, reject };
    });
    this.#greetingReceived.catch(() => {}); // connect() awaits it; never unhandled
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("end", () => this.#onEnd());
    socket.on("error", (error) => {
      // EPIPE/ECONNRESET land here; 'close' follows and does the cleanup.
      this.#socketError ??= error;
    });
    socket.on("close", () => this.#onSocketClose());
  }

  /**
   * Connects to QEMU's QMP socket, retrying while it is missing or refusing, reads the greeting
   * and negotiates (`qmp_capabilities`). Rejects with `TIMEOUT` when that takes longer than
   * `timeoutMs`, `QMP_PROTOCOL` on a bad greeting, `QMP_DISCONNECTED` when the peer goes away
   * or the socket cannot be opened at all.
   *
   * @example
   * ```ts
   * const qmp = await QmpClient.connect(join(runtimeDir, "qmp.sock"), { timeoutMs: 5_000, signal });
   * ```
   */
  static async connect(socketPath: string, options: QmpConnectOptions & QmpClientOptions = {}): Promise<QmpClient> {
    options.signal?.throwIfAborted();
    const timeoutMs = options.timeoutMs ?? options.connectTimeoutMs ?? DEFAULT_QMP_CONNECT_TIMEOUT_MS;
    const controller = new AbortController();
    let step: ConnectStep = "waiting for the socket to accept";
    let lastError: unknown;
    const timer = setTimeout(
      () => controller.abort(connectTimeoutError(socketPath, timeoutMs, step, lastError)),
      Math.min(timeoutMs, MAX_TIMER_MS),
    );
    const forwardAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", forwardAbort, { once: true });
    const signal = controller.signal;
    let client: QmpClient | undefined;
    try {
      const retryMs = options.retryIntervalMs ?? DEFAULT_QMP_RETRY_INTERVAL_MS;
      const socket = await openUnixSocket(socketPath, retryMs, signal, (e) => {
        lastError = e;
      });
      step = "waiting for the QMP greeting";
      client = new QmpClient(socket, socketPath, options);
      await raceAbort(client.#greetingReceived, signal);
      step = "negotiating capabilities";
      try {
        await client.execute("qmp_capabilities", undefined, { signal, timeoutMs: Number.POSITIVE_INFINITY });
      } catch (e) {
        if (!(e instanceof QmpCommandError)) throw e;
        throw negotiationError(socketPath, e);
      }
      client.#phase = "ready";
      const ready = client;
      // Released after the caller's `await connect()` continuation has had a chance to subscribe.
      setImmediate(() => ready.#releaseEvents());
      return client;
    } catch (e) {
      if (client) client.#teardown(undefined);
      throw e;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", forwardAbort);
    }
  }

  /** The greeting QEMU sent: its version and the capabilities it offered. */
  get greeting(): QmpGreeting {
    if (this.#greeting === undefined) throw new MaqetError("INTERNAL", "QMP greeting read before it arrived.");
    return this.#greeting;
  }

  get isClosed(): boolean {
    return this.#phase === "closed";
  }

  /**
   * Sends a command and resolves with its `return` value. Rejects with {@link QmpCommandError}
   * (`QMP_ERROR`) when QEMU refuses it, `QMP_TIMEOUT`, `QMP_DISCONNECTED`, or `signal.reason`.
   *
   * @example
   * ```ts
   * const { status } = await qmp.execute<{ status: string }>("query-status", undefined, { timeoutMs: 2_000 });
   * ```
   */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options: QmpExecuteOptions = {}): Promise<T> {
    if (this.#phase === "closed") {
      return Promise.reject(sessionClosedError(this.socketPath, command, this.#closeInfo?.error));
    }
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const timeoutMs = options.timeoutMs ?? this.#defaultTimeoutMs;
    if (!(timeoutMs > 0)) {
      return Promise.reject(
        new MaqetError("INVALID_ARGUMENT", `Invalid timeoutMs for QMP command '${command}': ${timeoutMs}.`, {
          details: { command, timeoutMs },
        }),
      );
    }
    const id = this.#inflight.nextId();
    return new Promise<T>((resolve, reject) => {
      const onTimeout = () => {
        this.#inflight.abandon(id);
        reject(commandTimeoutError(this.socketPath, command, timeoutMs));
      };
      const timer = Number.isFinite(timeoutMs) ? setTimeout(onTimeout, Math.min(timeoutMs, MAX_TIMER_MS)) : undefined;
      const onAbort = () => {
        this.#inflight.abandon(id);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      this.#inflight.add(id, { command, resolve: resolve as (v: unknown) => void, reject, cleanup });
      if (command === "quit") this.#quitSent = true;
      const request = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
      this.#socket.write(`${JSON.stringify(request)}\n`, (error) => {
        if (error) this.#onWriteFailed(id, error);
      });
    });
  }

  /**
   * Ends the session: pending calls reject with `QMP_DISCONNECTED`, `events$` completes, and the
   * returned promise resolves once the socket is closed. Safe to call any number of times.
   *
   * @example
   * ```ts
   * await qmp.close();
   * ```
   */
  async close(): Promise<void> {
    this.#closeRequested = true;
    this.#teardown(undefined);
    await this.closed;
  }

  #onData(chunk: Buffer): void {
    let lines: string[];
    try {
      lines = this.#splitter.push(chunk);
    } catch (error) {
      this.#teardown(error as Error);
      return;
    }
    for (const line of lines) {
      if (this.#phase === "closed") return;
      this.#onLine(line);
    }
  }

  #onEnd(): void {
    // QEMU always ends lines, but a last unterminated message is still worth reading.
    const rest = this.#splitter.flush();
    if (rest !== undefined && this.#phase !== "closed") this.#onLine(rest);
  }

  #onLine(line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch (cause) {
      this.#teardown(this.#protocolError(`unparseable line ${JSON.stringify(line.slice(0, 200))}`, cause));
      return;
    }
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      this.#teardown(this.#protocolError(`a message that is not a JSON object: ${line.slice(0, 200)}`));
      return;
    }
    const msg = message as Record<string, unknown>;
    if (this.#phase === "greeting" && this.#greeting === undefined) {
      try {
        this.#greeting = parseGreeting(msg, this.socketPath);
        this.#settleGreeting.resolve(this.#greeting);
      } catch (error) {
        this.#teardown(error as Error);
      }
      return;
    }
    if (typeof msg.event === "string") this.#onEvent(msg as unknown as QmpEvent);
    else if ("return" in msg || "error" in msg) this.#inflight.reply(msg);
    // Anything else is a message kind newer than us; the spec asks clients to ignore it.
  }

  #onEvent(event: QmpEvent): void {
    if (event.event === "SHUTDOWN") this.#shutdownSeen = true;
    if (this.#heldEvents) this.#heldEvents.push(event);
    else this.#events.next(event);
  }

  #releaseEvents(): void {
    const held = this.#heldEvents;
    this.#heldEvents = undefined;
    for (const event of held ?? []) this.#events.next(event);
    if (this.#phase === "closed") this.#events.complete();
  }

  #onWriteFailed(id: string, error: Error): void {
    this.#socketError ??= error;
    const pending = this.#inflight.take(id);
    if (!pending) return;
    // QEMU already gone is exactly what `quit` asked for.
    if (pending.command === "quit") pending.resolve({});
    else pending.reject(this.#disconnectedError(pending.command, error));
  }

  #onSocketClose(): void {
    let error: Error | undefined;
    if (!this.#closeRequested && !this.#quitSent && !this.#shutdownSeen) {
      error = unexpectedCloseError(this.socketPath, this.#socketError);
    }
    this.#teardown(error);
    this.#resolveClosed(this.#closeInfo ?? {});
  }

  /** Ends the session once: settles every pending call, completes events$, closes the socket. */
  #teardown(error: Error | undefined): void {
    if (this.#phase === "closed") return;
    this.#phase = "closed";
    this.#closeInfo = error ? { error } : {};
    const reason = error ?? this.#socketError;
    if (this.#greeting === undefined) {
      const lost = closedBeforeGreetingError(this.socketPath, error ?? this.#socketError);
      this.#settleGreeting.reject(isMaqetError(error, "QMP_PROTOCOL") ? error : lost);
    }
    this.#inflight.drain((pending) => {
      if (pending.command === "quit" && !this.#closeRequested) pending.resolve({});
      else pending.reject(this.#disconnectedError(pending.command, reason));
    });
    if (!this.#heldEvents) this.#events.complete();
    // Our writes are flushed before the socket goes; QEMU closes its end on EOF.
    if (!this.#socket.destroyed) this.#socket.end(() => this.#socket.destroy());
    if (error) this.#socket.destroy();
  }

  #disconnectedError(command: string, cause: unknown): MaqetError {
    return disconnectedError(this.socketPath, command, cause, this.#closeRequested);
  }

  #protocolError(what: string, cause?: unknown): MaqetError {
    return protocolError(this.socketPath, what, cause);
  }
}

/**
 * The production `QmpConnector`: one {@link QmpClient} per `connect`.
 *
 * @example
 * ```ts
 * const qmp = await createQmpConnector({ defaultTimeoutMs: 10_000 }).connect(socketPath, { timeoutMs: 5_000 });
 * ```
 */
export function createQmpConnector(options: QmpClientOptions = {}): QmpConnector {
  return {
    connect: (socketPath, connectOptions = {}) => QmpClient.connect(socketPath, { ...options, ...connectOptions }),
  };
}

/** Settles like `promise`, or rejects with `signal.reason` as soon as the signal aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
