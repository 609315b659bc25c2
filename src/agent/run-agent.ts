/**
 * `maqet agent`: the long-lived process. Claims its socket (and data directory), opens the store
 * once (live projections, supervision of running QEMU when the core has it), serves the API on the
 * unix socket (and with `--listen`, on TCP with a bearer token), logs each request, and on
 * SIGTERM/SIGINT stops gracefully: stop accepting, end event streams (clients resume), let running
 * operations finish for `--grace` seconds, close the store (leases released). QEMU keeps running:
 * the next agent reattaches every VM. A second signal exits at once.
 *
 * @example
 * ```ts
 * const code = await runAgent(["--log-format", "json"], { env: process.env, stderr: console.error });
 * ```
 */
import { createServer, type Server } from "node:http";
import { hostname } from "node:os";
import { join } from "node:path";
import { defaultDataDir, defaultRuntimeRoot } from "../adapters/default-dirs.ts";
import { loadGlobalConfig } from "../adapters/load-global-config.ts";
import { defaultHostName } from "../api/cluster-member.ts";
import { labelsOf } from "../api/commands/host-commands.ts";
import { createMaqet, type Maqet, type MaqetOptions } from "../api/maqet.ts";
import { storeIdOf } from "../client/store-id.ts";
import { isMaqetError } from "../errors/maqet-error.ts";
import { agentHelp, parseAgentArgs } from "./agent-args.ts";
import { createAgentHandler } from "./agent-handler.ts";
import { createAgentLog } from "./agent-log.ts";
import { claimAgentSocket } from "./agent-socket.ts";
import { generateTokenFile, readTokenFile } from "./agent-token.ts";
import { packageVersion } from "./package-version.ts";
import { createWebConsole } from "./web-console.ts";
import { createWebSessions } from "./web-session.ts";

export interface AgentIo {
  env: Record<string, string | undefined>;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** Where SIGTERM/SIGINT come from (default: this process). */
  signals?: Pick<NodeJS.Process, "on" | "off">;
}

/** The default socket: `agent.sock` in maqet's runtime directory. */
export function defaultAgentSocket(env: Record<string, string | undefined>, runtimeDir?: string): string {
  return join(runtimeDir ?? defaultRuntimeRoot(env), "agent.sock");
}

/** Runs the agent until it is stopped; resolves with the exit code. */
export async function runAgent(argv: readonly string[], io: AgentIo): Promise<number> {
  let args: ReturnType<typeof parseAgentArgs>;
  try {
    args = parseAgentArgs(argv);
  } catch (error) {
    return fail(error, io);
  }
  if (args.help) {
    io.stdout(agentHelp());
    return 0;
  }
  const log = createAgentLog(args.logFormat, io.stderr);
  const databaseUrl = args.db ?? io.env.MAQET_DATABASE_URL;
  const runtimeDir = args.runtimeDir ?? defaultRuntimeRoot(io.env);
  const dataDir = args.dataDir ?? defaultDataDir(io.env);
  const socket = args.socket ?? defaultAgentSocket(io.env, runtimeDir);
  const joins = args.host !== undefined || args.labels.length > 0;
  let cluster: MaqetOptions["cluster"];
  try {
    cluster = joins
      ? {
          host: args.host ?? defaultHostName(),
          member: true,
          labels: labelsOf(args.labels, "--label"),
          ...(args.leaseTtlMs !== undefined ? { leaseTtlMs: args.leaseTtlMs } : {}),
          ...(args.fenceAfterMs !== undefined ? { fenceAfterMs: args.fenceAfterMs } : {}),
          ...(args.migrationAddress !== undefined ? { migrationAddress: args.migrationAddress } : {}),
        }
      : args.migrationAddress !== undefined
        ? { migrationAddress: args.migrationAddress }
        : undefined;
  } catch (error) {
    return fail(error, io);
  }
  let place: Awaited<ReturnType<typeof claimAgentSocket>> | undefined;
  let maqet: Maqet | undefined;
  const servers: Server[] = [];
  try {
    place = await claimAgentSocket({ socket, dataDir: databaseUrl ? undefined : dataDir, group: args.group });
    const options: MaqetOptions & { supervise?: boolean } = {
      databaseUrl,
      dataDir,
      runtimeDir,
      env: io.env,
      source: "agent",
      command: "maqet agent",
      liveProjections: true,
      supervise: true,
      qmpPolicy: async () => (await loadGlobalConfig(io.env)).config.qmp,
      onWarning: (message) => log.note(`warning: ${message}`),
      ...(cluster ? { cluster } : {}),
      // Crash tests (docs/crash-points.md): an agent dies at the point like a CLI does.
      ...(io.env.MAQET_CRASH_AT ? { crashAt: io.env.MAQET_CRASH_AT } : {}),
    };
    maqet = createMaqet(options);
    const vms = await maqet.list(); // opens the store now: a locked or broken one fails the start
    const version = packageVersion();
    const about = {
      socket,
      store: storeIdOf({ databaseUrl, dataDir }),
      runtimeDir,
    };
    const unix = createAgentHandler({
      maqet,
      version,
      host: cluster?.host ?? hostname(),
      tcp: false,
      about,
      log: log.request,
    });
    servers.push(await listen(createServer(unix.handle).on("upgrade", unix.upgrade), socket));
    await place.secure();
    const handlers = [unix];
    let tokenNote = "";
    let loginUrl: string | undefined;
    if (args.listen) {
      const tokenFile = args.tokenFile ?? join(runtimeDir, "agent.token");
      const token = args.tokenFile ? await readTokenFile(args.tokenFile) : await generateTokenFile(tokenFile);
      const web = createWebConsole({ token, sessions: createWebSessions() });
      const tcp = createAgentHandler({
        maqet,
        version,
        host: cluster?.host ?? hostname(),
        tcp: true,
        token,
        web,
        about,
        log: log.request,
      });
      servers.push(
        await listen(createServer(tcp.handle).on("upgrade", tcp.upgrade), args.listen.port, args.listen.host),
      );
      handlers.push(tcp);
      tokenNote = `; TCP ${args.listen.host}:${args.listen.port}, bearer token in ${args.tokenFile ?? tokenFile}`;
      loginUrl = `${consoleBase(args.listen)}/login?token=${web.sessions.mintLoginToken()}`;
    }
    log.note(
      `listening on ${socket} (pid ${process.pid}, ${vms.length} VM(s), store ${databaseUrl ? "postgresql" : dataDir}${tokenNote}${cluster ? `; cluster host ${cluster.host}` : ""})`,
      { socket, pid: process.pid },
    );
    // The Jupyter pattern: a one-time link that logs a browser in (then the token file's token does).
    if (loginUrl) log.note(`web console: open ${loginUrl}`, { url: loginUrl });
    await stopSignal(io);
    log.note(`stopping: no new requests; ${handlers.reduce((n, h) => n + h.inFlight, 0)} operation(s) running`);
    for (const server of servers) {
      server.close();
      server.closeIdleConnections();
    }
    for (const h of handlers) h.endStreams();
    const grace = new Promise((resolve) => setTimeout(resolve, args.graceSeconds * 1000).unref());
    const settled = await Promise.race([Promise.all(handlers.map((h) => h.idle())).then(() => true), grace]);
    if (settled !== true) log.note(`grace of ${args.graceSeconds}s over: closing with operations still running`);
    for (const server of servers) server.closeAllConnections();
    await maqet.close();
    await place.release();
    log.note("stopped; running VMs keep running");
    return 0;
  } catch (error) {
    for (const server of servers) server.close();
    await maqet?.close().catch(() => undefined);
    await place?.release().catch(() => undefined);
    return fail(error, io);
  }
}

/** The console's address as a browser reaches it (a wildcard address means this machine). */
function consoleBase(listen: { host: string; port: number }): string {
  const host = listen.host === "0.0.0.0" || listen.host === "::" ? "127.0.0.1" : listen.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${listen.port}`;
}

function listen(server: Server, pathOrPort: string | number, host?: string): Promise<Server> {
  // Long operations (a start waiting for a serial line) must not be cut by Node's defaults.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    const done = () => {
      server.off("error", reject);
      resolve(server);
    };
    if (typeof pathOrPort === "string") server.listen(pathOrPort, done);
    else server.listen(pathOrPort, host, done);
  });
}

/** Resolves at the first SIGTERM or SIGINT; a second one exits at once. */
function stopSignal(io: AgentIo): Promise<void> {
  const signals = io.signals ?? process;
  return new Promise((resolve) => {
    const first = () => {
      signals.off("SIGTERM", first);
      signals.off("SIGINT", first);
      signals.on("SIGTERM", () => process.exit(1));
      signals.on("SIGINT", () => process.exit(1));
      resolve();
    };
    signals.on("SIGTERM", first);
    signals.on("SIGINT", first);
  });
}

function fail(error: unknown, io: AgentIo): number {
  if (isMaqetError(error)) {
    io.stderr(`maqet: ${error.message}`);
    return error.exitCode;
  }
  io.stderr(`maqet: agent failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return 1;
}
