/**
 * The agent's serving half, loaded once `runAgent` holds the socket's lock: opens the store
 * (live projections, supervision of running QEMU), serves the API on the unix socket (and with
 * `--listen`, on TCP with a bearer token and the web console), logs each request, and on
 * SIGTERM/SIGINT stops gracefully: stop accepting, end event streams (clients resume), let running
 * operations finish for `--grace` seconds, close the store (leases released), release the lock.
 *
 * @example
 * ```ts
 * const place = await claimAgentSocket({ socket, dataDir });
 * return serveAgent({ args, io, log, place, databaseUrl, dataDir, runtimeDir, socket });
 * ```
 */
import { join } from "node:path";
import type { AgentPlace } from "../adapters/agent-socket.ts";
import { hostName } from "../adapters/host-info.ts";
import { defaultHostName } from "../adapters/host-name.ts";
import { type HttpServer, listenHttp } from "../adapters/http-listen.ts";
import { loadGlobalConfig } from "../adapters/load-global-config.ts";
import { packageVersion } from "../adapters/package-version.ts";
import { generateTokenFile, readTokenFile } from "../adapters/token-file.ts";
import { labelsOf } from "../api/commands/host-commands.ts";
import { createMaqet, type Maqet, type MaqetOptions } from "../api/maqet.ts";
import { storeIdOf } from "../client/store-id.ts";
import type { AgentArgs } from "./agent-args.ts";
import { createAgentHandler } from "./agent-handler.ts";
import { type AgentLog, agentFailure } from "./agent-log.ts";
import type { AgentIo } from "./run-agent.ts";
import { createWebConsole } from "./web-console.ts";
import { createWebSessions } from "./web-session.ts";

export interface ServeAgentOptions {
  args: AgentArgs;
  io: AgentIo;
  log: AgentLog;
  /** The socket's (and data directory's) locks, held; released when the agent stops or fails. */
  place: AgentPlace;
  databaseUrl: string | undefined;
  dataDir: string;
  runtimeDir: string;
  socket: string;
}

/** Serves until stopped; resolves with the exit code. */
export async function serveAgent(o: ServeAgentOptions): Promise<number> {
  const { args, io, log, place, databaseUrl, dataDir, runtimeDir, socket } = o;
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
    await place.release().catch(() => undefined);
    return agentFailure(error, io);
  }
  let maqet: Maqet | undefined;
  const servers: HttpServer[] = [];
  try {
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
      host: cluster?.host ?? hostName(),
      tcp: false,
      about,
      log: log.request,
    });
    servers.push(await listenHttp(unix, { socket }));
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
        host: cluster?.host ?? hostName(),
        tcp: true,
        token,
        web,
        about,
        log: log.request,
      });
      servers.push(await listenHttp(tcp, { port: args.listen.port, host: args.listen.host }));
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
    await place.release().catch(() => undefined);
    return agentFailure(error, io);
  }
}

/** The console's address as a browser reaches it (a wildcard address means this machine). */
function consoleBase(listen: { host: string; port: number }): string {
  const host = listen.host === "0.0.0.0" || listen.host === "::" ? "127.0.0.1" : listen.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${listen.port}`;
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
