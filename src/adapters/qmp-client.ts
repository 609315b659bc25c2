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
 * Longer than STYLE's ~400 lines because dialing (retry, greeting) and the session share private
 * state; the dial helpers at the bottom could move to their own file.
 */
import { createConnection, type Socket } from "node:net";
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
import { QmpLineSplitter } from "./qmp-line-splitter.ts";

const DEFAULT_QMP_TIMEOUT_MS = 30_000;
const DEFAULT_QMP_CONNECT_TIMEOUT_MS = 10_000;
/** QEMU creates its socket ~25 ms after spawn; polling every 5 ms costs nothing. */
const DEFAULT_QMP_RETRY_INTERVAL_MS = 5;
/** setTimeout silently turns longer delays into 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

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

interface Pending {
  command: string;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  cleanup(): void;
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
  /** Requests sent and not yet answered, in send order; null = abandoned, drop its reply. */
  readonly #inflight = new Map<string, Pending | null>();
  #nextId = 0;
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
    let step = "waiting for the socket to accept";
    let lastError: unknown;
    const timer = setTimeout(
      () => {
        const last = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
        const fix =
          step === "waiting for the socket to accept"
            ? "Check that QEMU is running with `-qmp unix:<path>,server=on,wait=off` and read its log."
            : "QEMU serves one client per QMP socket: another client may hold it, or this is not a QMP socket.";
        const message = `Timed out after ${timeoutMs} ms connecting to QMP socket ${socketPath}, ${step}${last}. ${fix}`;
        controller.abort(
          new MaqetError("TIMEOUT", message, { cause: lastError, details: { socketPath, timeoutMs, step } }),
        );
      },
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
        throw new MaqetError(
          "QMP_PROTOCOL",
          `QMP negotiation failed on ${socketPath}: qmp_capabilities was refused (${e.errorClass}: ${e.desc}). The monitor may already be in command mode; reconnect to get a fresh session.`,
          { cause: e, details: { socketPath } },
        );
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
      return Promise.reject(
        new MaqetError(
          "QMP_DISCONNECTED",
          `Cannot send QMP command '${command}': the session on ${this.socketPath} is closed. Connect again.`,
          { cause: this.#closeInfo?.error, details: { command, socketPath: this.socketPath } },
        ),
      );
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
    const id = `maqet-${++this.#nextId}`;
    return new Promise<T>((resolve, reject) => {
      const onTimeout = () => {
        this.#abandon(id);
        reject(
          new MaqetError(
            "QMP_TIMEOUT",
            `QMP command '${command}' on ${this.socketPath} got no reply within ${timeoutMs} ms. QEMU may be hung or busy: check the VM log, raise timeoutMs, or force-stop the VM.`,
            { details: { command, timeoutMs, socketPath: this.socketPath } },
          ),
        );
      };
      const timer = Number.isFinite(timeoutMs) ? setTimeout(onTimeout, Math.min(timeoutMs, MAX_TIMER_MS)) : undefined;
      const onAbort = () => {
        this.#abandon(id);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      this.#inflight.set(id, { command, resolve: resolve as (v: unknown) => void, reject, cleanup });
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
    else if ("return" in msg || "error" in msg) this.#onReply(msg);
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

  #onReply(msg: Record<string, unknown>): void {
    if (!("id" in msg)) {
      if ("error" in msg) this.#onIdlessError(msg.error);
      return;
    }
    const id = msg.id;
    if (typeof id !== "string" || !this.#inflight.has(id)) return; // not ours: drop
    const pending = this.#inflight.get(id);
    this.#inflight.delete(id);
    if (!pending) return; // timed out or aborted earlier
    pending.cleanup();
    if ("error" in msg) {
      const { errorClass, desc } = qmpErrorFields(msg.error);
      pending.reject(new QmpCommandError(pending.command, errorClass, desc, this.socketPath));
    } else pending.resolve(msg.return);
  }

  #onIdlessError(error: unknown): void {
    const oldest = this.#inflight.entries().next();
    if (oldest.done) return;
    const [id, pending] = oldest.value;
    this.#inflight.delete(id);
    if (!pending) return;
    pending.cleanup();
    const { errorClass, desc } = qmpErrorFields(error);
    pending.reject(
      new MaqetError(
        "QMP_PROTOCOL",
        `QEMU could not parse a request on ${this.socketPath} and answered without an id (${errorClass}: ${desc}); attributed to the oldest outstanding command '${pending.command}'. This is a maqet bug: please report it with the command and arguments.`,
        { details: { class: errorClass, desc, command: pending.command, socketPath: this.socketPath } },
      ),
    );
  }

  #abandon(id: string): void {
    const pending = this.#inflight.get(id);
    if (!pending) return;
    pending.cleanup();
    // Keep the slot so a late reply is recognised and dropped, and id-less errors stay aligned.
    this.#inflight.set(id, null);
  }

  #onWriteFailed(id: string, error: Error): void {
    this.#socketError ??= error;
    const pending = this.#inflight.get(id);
    if (!pending) return;
    this.#inflight.delete(id);
    pending.cleanup();
    // QEMU already gone is exactly what `quit` asked for.
    if (pending.command === "quit") pending.resolve({});
    else pending.reject(this.#disconnectedError(pending.command, error));
  }

  #onSocketClose(): void {
    let error: Error | undefined;
    if (!this.#closeRequested && !this.#quitSent && !this.#shutdownSeen) {
      const why = this.#socketError ? ` (${this.#socketError.message})` : "";
      error = new MaqetError(
        "QMP_DISCONNECTED",
        `QMP connection to ${this.socketPath} closed unexpectedly${why}. QEMU probably exited or crashed: check the VM log and its process.`,
        { cause: this.#socketError, details: { socketPath: this.socketPath } },
      );
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
      const lost = new MaqetError(
        "QMP_DISCONNECTED",
        `QMP socket ${this.socketPath} closed before QEMU sent its greeting. Is it a QMP socket, and is QEMU still running? Check the VM log.`,
        { cause: error ?? this.#socketError, details: { socketPath: this.socketPath } },
      );
      this.#settleGreeting.reject(isMaqetError(error, "QMP_PROTOCOL") ? error : lost);
    }
    for (const pending of this.#inflight.values()) {
      if (!pending) continue;
      pending.cleanup();
      if (pending.command === "quit" && !this.#closeRequested) pending.resolve({});
      else pending.reject(this.#disconnectedError(pending.command, reason));
    }
    this.#inflight.clear();
    if (!this.#heldEvents) this.#events.complete();
    // Our writes are flushed before the socket goes; QEMU closes its end on EOF.
    if (!this.#socket.destroyed) this.#socket.end(() => this.#socket.destroy());
    if (error) this.#socket.destroy();
  }

  #disconnectedError(command: string, cause: unknown): MaqetError {
    const message = this.#closeRequested
      ? `QMP command '${command}' on ${this.socketPath} was cancelled: the session was closed by the caller.`
      : `QMP connection to ${this.socketPath} was lost while '${command}' waited for a reply. QEMU probably exited: check the VM log.`;
    return new MaqetError("QMP_DISCONNECTED", message, { cause, details: { command, socketPath: this.socketPath } });
  }

  #protocolError(what: string, cause?: unknown): MaqetError {
    return new MaqetError(
      "QMP_PROTOCOL",
      `QMP protocol error on ${this.socketPath}: ${what}. Is this a QMP socket? Reconnect to recover.`,
      { cause, details: { socketPath: this.socketPath } },
    );
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

/** sockaddr_un.sun_path is 108 bytes with its NUL; Node silently truncates longer paths into ENOENT. */
const MAX_UNIX_PATH_BYTES = 107;

/** Connection errors that mean "not there yet": QEMU has not created or started listening on the socket. */
const RETRYABLE_CONNECT_ERRORS = new Set(["ENOENT", "ECONNREFUSED", "EAGAIN"]);

/**
 * Opens the unix socket, retrying every `retryMs` while it is missing or refusing, until `signal`
 * aborts (then rejects with its reason). Other errors (EACCES, a path too long...) fail at once.
 */
async function openUnixSocket(
  socketPath: string,
  retryMs: number,
  signal: AbortSignal,
  onRetry: (error: unknown) => void,
): Promise<Socket> {
  const bytes = Buffer.byteLength(socketPath);
  if (bytes > MAX_UNIX_PATH_BYTES) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `QMP socket path is ${bytes} bytes, over the ${MAX_UNIX_PATH_BYTES}-byte limit of unix sockets: ${socketPath}. Use a shorter runtime directory.`,
      { details: { socketPath, bytes } },
    );
  }
  dialing++;
  try {
    return await dial(socketPath, retryMs, signal, onRetry);
  } finally {
    dialing--;
  }
}

/**
 * Dials in progress in this process. Past {@link DIALS_AT_FULL_RATE} of them each retries less
 * often: 200 VMs started at once by one agent polled 40 000 times a second at 5 ms each, which
 * was the agent's whole CPU while the QEMUs it waited for needed it (now at most ~2 000 a second).
 */
let dialing = 0;
const DIALS_AT_FULL_RATE = 10;

async function dial(
  socketPath: string,
  retryMs: number,
  signal: AbortSignal,
  onRetry: (error: unknown) => void,
): Promise<Socket> {
  for (;;) {
    signal.throwIfAborted();
    try {
      return await connectOnce(socketPath, signal);
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      const code = (error as NodeJS.ErrnoException).code;
      if (!code || !RETRYABLE_CONNECT_ERRORS.has(code)) {
        throw new MaqetError(
          "QMP_DISCONNECTED",
          `Cannot connect to QMP socket ${socketPath}: ${(error as Error).message}. Check the path and its permissions.`,
          { cause: error, details: { socketPath, errno: code } },
        );
      }
      onRetry(error);
      await sleep(retryMs * Math.max(1, dialing / DIALS_AT_FULL_RATE), signal);
    }
  }
}

function connectOnce(socketPath: string, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path: socketPath });
    const onAbort = () => {
      socket.destroy();
      reject(signal.reason);
    };
    const onError = (error: Error) => {
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      reject(error);
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      signal.removeEventListener("abort", onAbort);
      // The session attaches its own error handler before any further event can fire.
      socket.off("error", onError);
      resolve(socket);
    });
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Validates `{"QMP": {"version": {"qemu": {...}, "package"}, "capabilities": [...]}}`; extra keys are fine. */
function parseGreeting(msg: Record<string, unknown>, socketPath: string): QmpGreeting {
  const qmp = msg.QMP as { version?: { qemu?: Record<string, unknown>; package?: unknown }; capabilities?: unknown };
  const qemu = qmp?.version?.qemu;
  const numbers = [qemu?.major, qemu?.minor, qemu?.micro];
  if (typeof qmp !== "object" || qmp === null || !numbers.every((n) => typeof n === "number")) {
    throw new MaqetError(
      "QMP_PROTOCOL",
      `Bad QMP greeting on ${socketPath}: expected {"QMP": {"version": {"qemu": {major, minor, micro}}}}, got ${JSON.stringify(msg).slice(0, 200)}. Is this a QMP socket (-qmp, not -monitor or -serial)?`,
      { details: { socketPath, greeting: msg } },
    );
  }
  const [major, minor, micro] = numbers as number[];
  const capabilities = Array.isArray(qmp.capabilities) ? qmp.capabilities.map(String) : [];
  const pkg = typeof qmp.version?.package === "string" ? qmp.version.package : "";
  return { version: { qemu: { major: major!, minor: minor!, micro: micro! }, package: pkg }, capabilities };
}

/** The class and description of a QMP `error` member, tolerating a malformed one. */
function qmpErrorFields(error: unknown): { errorClass: string; desc: string } {
  const e = (typeof error === "object" && error !== null ? error : {}) as { class?: unknown; desc?: unknown };
  return {
    errorClass: typeof e.class === "string" ? e.class : "GenericError",
    desc: typeof e.desc === "string" ? e.desc : JSON.stringify(error),
  };
}
