/**
 * The client side of the agent's interactive console: `GET /v1/vms/:vm/console?interactive=true`
 * with `Connection: Upgrade`, `Upgrade: maqet-console.v1`. The agent attaches for the caller
 * (takes the writer seat, records `vm.console-attached`) and answers `101 Switching Protocols`
 * with a `Maqet-Console` header (the attach as JSON); from then on the connection carries the
 * serial console's raw bytes both ways. Closing our end detaches. Any refusal (CONSOLE_BUSY, a
 * stopped VM) is an ordinary JSON error answer instead of the 101 (src/adapters/http-stream.ts).
 *
 * @example
 * ```ts
 * const attach = await upgradeConsole(endpoint, "web", { force: false, readOnly: false });
 * const conn = attach.open((bytes) => process.stdout.write(bytes));
 * conn.write(new TextEncoder().encode("uname -a\r"));
 * conn.close();
 * ```
 */
import { httpUpgrade, type UpgradedSocket } from "../adapters/http-stream.ts";
import type { ConsoleConnection, ConsoleEnd } from "../adapters/serial-connection.ts";
import type { ConsoleAttachment } from "../api/ops/console-attach-ops.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { ConsoleHolderFacts, ConsoleMode } from "../events/console-events.ts";
import { type AgentEndpoint, brokenConnectionError, describeEndpoint } from "./agent-transport.ts";

/** The protocol named in `Upgrade:`. */
export const CONSOLE_UPGRADE_PROTOCOL = "maqet-console.v1";

/** What the agent says about the attach (the `Maqet-Console` header): the attachment's facts, as JSON. */
export type UpgradedAttach = Pick<ConsoleAttachment, "vm" | "vmId" | "session" | "mode" | "since" | "takeover"> & {
  takenOverFrom?: Record<string, unknown>;
};

export interface UpgradedConsole {
  about: UpgradedAttach;
  /** Starts delivering the guest's bytes (held until then) and returns the connection. */
  open(onData: (bytes: Uint8Array) => void): ConsoleConnection;
}

export async function upgradeConsole(
  endpoint: AgentEndpoint,
  vm: string,
  options: { force?: boolean; readOnly?: boolean },
): Promise<UpgradedConsole> {
  const query = new URLSearchParams({ interactive: "true" });
  if (options.force) query.set("force", "true");
  if (options.readOnly) query.set("read-only", "true");
  const path = `/v1/vms/${encodeURIComponent(vm)}/console?${query}`;
  const headers: Record<string, string> = {
    ...endpoint.headers,
    connection: "Upgrade",
    upgrade: CONSOLE_UPGRADE_PROTOCOL,
    accept: "application/json",
  };
  if (endpoint.token) headers.authorization = `Bearer ${endpoint.token}`;
  const target = endpoint.socket
    ? { socketPath: endpoint.socket, path }
    : (() => {
        const url = new URL(path, endpoint.url);
        return { host: url.hostname, port: Number(url.port || 80), path: url.pathname + url.search };
      })();
  let outcome: Awaited<ReturnType<typeof httpUpgrade>>;
  try {
    outcome = await httpUpgrade(target, headers);
  } catch (error) {
    throw brokenConnectionError(endpoint, error);
  }
  if (outcome.kind === "upgraded") {
    const { socket, head } = outcome;
    let about: UpgradedAttach;
    try {
      about = JSON.parse(String(outcome.headers["maqet-console"] ?? "")) as UpgradedAttach;
    } catch {
      socket.destroy();
      throw new MaqetError(
        "INTERNAL",
        `The agent at ${describeEndpoint(endpoint)} upgraded without a Maqet-Console header.`,
      );
    }
    return { about, open: (onData) => socketConnection(socket, head, about.mode, onData) };
  }
  let body: { error?: { code?: string; message?: string; details?: Record<string, unknown> } };
  try {
    body = JSON.parse(outcome.text) as typeof body;
  } catch {
    throw new MaqetError(
      "INTERNAL",
      `The agent at ${describeEndpoint(endpoint)} did not upgrade to the console (${outcome.status}: ${outcome.text.slice(0, 200)}). It may predate \`console -i\` (GET /v1/version lists "console-interactive" in extensions).`,
    );
  }
  const e = body.error;
  throw new MaqetError((e?.code ?? "INTERNAL") as never, e?.message ?? `The agent answered ${outcome.status}.`, {
    details: e?.details ?? {},
  });
}

/**
 * `attachConsole` of the remote client: the upgrade happens now (so CONSOLE_BUSY comes at once);
 * the agent records the attach and, when the connection ends, the detach.
 */
export async function attachThroughAgent(
  endpoint: AgentEndpoint,
  vm: string,
  options: { force?: boolean; readOnly?: boolean },
): Promise<ConsoleAttachment> {
  const upgraded = await upgradeConsole(endpoint, vm, {
    force: options.force === true,
    readOnly: options.readOnly === true,
  });
  const a = upgraded.about;
  let resolveDetached!: (end: ConsoleEnd) => void;
  const detached = new Promise<ConsoleEnd>((resolve) => {
    resolveDetached = resolve;
  });
  return {
    vm: a.vm,
    vmId: a.vmId,
    session: a.session,
    mode: a.mode,
    since: a.since,
    ...(a.takeover ? { takeover: a.takeover } : {}),
    ...(a.takenOverFrom ? { takenOverFrom: a.takenOverFrom as unknown as ConsoleHolderFacts } : {}),
    detached,
    open: async (onData) => {
      const conn = upgraded.open(onData);
      void conn.ended.then(resolveDetached);
      return conn;
    },
  };
}

/** The upgraded socket as a console connection: its end is the agent ending the attach, or ours. */
function socketConnection(
  socket: UpgradedSocket,
  head: Buffer,
  mode: ConsoleMode,
  onData: (bytes: Uint8Array) => void,
): ConsoleConnection {
  let end: ConsoleEnd | undefined;
  let resolveEnded!: (end: ConsoleEnd) => void;
  const ended = new Promise<ConsoleEnd>((r) => {
    resolveEnded = r;
  });
  const finish = (next: ConsoleEnd) => {
    if (end !== undefined) return;
    end = next;
    socket.end();
    socket.destroy();
    resolveEnded(next);
  };
  if (head.length > 0) onData(new Uint8Array(head));
  socket.on("data", (chunk: Buffer) => onData(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
  // The agent closes when QEMU closed the console, or the seat was taken (it says which, in the stream).
  socket.on("end", () => finish({ reason: "disconnected" }));
  socket.on("close", () => finish({ reason: "disconnected" }));
  socket.on("error", (error) => finish({ reason: "error", message: error.message }));
  socket.resume();
  return {
    mode,
    write: (bytes) => {
      if (end === undefined && mode === "read-write") socket.write(bytes);
    },
    close: (reason = "detached", message) => finish({ reason, ...(message ? { message } : {}) }),
    ended,
  };
}
