/**
 * Dialing QEMU's QMP socket: a unix socket connect, retried while QEMU has not created the
 * socket or does not listen yet (ENOENT, ECONNREFUSED, EAGAIN), until the signal aborts; any
 * other error, or a path longer than a unix socket allows, fails at once.
 *
 * @example
 * ```ts
 * const socket = await openUnixSocket("/run/maqet/web/qmp.sock", 5, AbortSignal.timeout(5_000), () => {});
 * ```
 */
import { createConnection, type Socket } from "node:net";
import { MaqetError } from "../errors/maqet-error.ts";
import { abortableSleep } from "../util/abortable-sleep.ts";

/** sockaddr_un.sun_path is 108 bytes with its NUL; Node silently truncates longer paths into ENOENT. */
const MAX_UNIX_PATH_BYTES = 107;

/** Connection errors that mean "not there yet": QEMU has not created or started listening on the socket. */
const RETRYABLE_CONNECT_ERRORS = new Set(["ENOENT", "ECONNREFUSED", "EAGAIN"]);

/**
 * Opens the unix socket, retrying every `retryMs` while it is missing or refusing, until `signal`
 * aborts (then rejects with its reason). Other errors (EACCES, a path too long...) fail at once.
 */
export async function openUnixSocket(
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
      await abortableSleep(retryMs * Math.max(1, dialing / DIALS_AT_FULL_RATE), signal);
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
