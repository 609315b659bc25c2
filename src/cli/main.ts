/**
 * The `maqet` command line: parse, run one library operation, render, map errors to exit codes
 * (0 ok, 1 failure, 2 timeout, 3 invalid input or not found, 4 refused for security).
 *
 * @example
 * ```ts
 * const code = await runCli(["status", "web", "--json"], { env: process.env, stdout, stderr });
 * ```
 */
import { readFileSync } from "node:fs";
import { filter, map } from "rxjs";
import { defaultDataDir } from "../adapters/default-dirs.ts";
import { loadGlobalConfig } from "../adapters/load-global-config.ts";
import { isAttachedConsole } from "../api/commands/attached-console.ts";
import { isStreamedResult, streamedResult } from "../api/commands/streamed-result.ts";
import { isStreamedValues } from "../api/commands/streamed-values.ts";
import { createMaqet } from "../api/maqet.ts";
import { isMaqetError } from "../errors/maqet-error.ts";
import { runAttached } from "./console-session.ts";
import { runDemo } from "./demo.ts";
import { renderHelp } from "./help.ts";
import { type GlobalOptions, parseArgs } from "./parse-args.ts";
import { pipeStream } from "./pipe-stream.ts";
import { type ProgressSink, renderProgress } from "./progress-renderer.ts";
import { renderResult } from "./render.ts";
import { debugTrace, openRunLog, type RunLog, renderYaml, withRunLog } from "./run-log.ts";
import { runStorelessCommand } from "./storeless-commands.ts";

export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Writes text as is, no newline added (streamed output such as `console --follow`). Default: `stdout`. */
  write?: (text: string) => void;
  /** Where long operations draw progress (a bar on a TTY). Default: plain lines through `stderr`. */
  progress?: ProgressSink;
  /** A yes/no question on the terminal (`rm --all`); absent when stdin is not a terminal. */
  confirm?: (question: string) => Promise<boolean>;
}

/**
 * `via`: run the command's operations through this agent (a command that needs the terminal
 * and only reads, such as `ssh`, runs here while an agent holds the store).
 */
export async function runCli(
  argv: readonly string[],
  cliIo: CliIo,
  via?: { agent: string; agentToken?: string },
): Promise<number> {
  let io = cliIo;
  let global: GlobalOptions = {
    json: argv.includes("--json"),
    help: false,
    version: false,
    verbosity: 0,
    debug: argv.includes("--debug"),
  };
  let log: RunLog | undefined;
  try {
    const parsed = parseArgs(argv);
    global = parsed.global;
    log = global.logFile === undefined ? undefined : openRunLog(global.logFile, argv);
    io = withRunLog(io, log);
    if (global.configDir !== undefined) io = { ...io, env: { ...io.env, MAQET_CONFIG_DIR: global.configDir } };
    if (global.version) {
      io.stdout(version());
      return 0;
    }
    if (parsed.commandName === undefined || parsed.commandName === "help" || global.help) {
      const topic = parsed.commandName === "help" ? (parsed.input.topic as string | undefined) : parsed.commandName;
      io.stdout(renderHelp(topic));
      return 0;
    }
    const offline = runStorelessCommand(parsed.commandName, parsed.input);
    if (offline !== undefined) {
      io.stdout(offline);
      return 0;
    }
    const options = {
      ...(via ?? {}),
      databaseUrl: global.db ?? io.env.MAQET_DATABASE_URL,
      dataDir: global.dataDir,
      runtimeDir: global.runtimeDir,
      env: io.env,
      source: "cli",
      // Read before each QMP command only, so a broken policy file blocks QMP, not `stop`.
      qmpPolicy: async () => (await loadGlobalConfig(io.env)).config.qmp,
      onWarning: (message: string) => io.stderr(`maqet: warning: ${message}`),
      // Test only (docs/crash-points.md): inert unless set.
      crashAt: io.env.MAQET_CRASH_AT,
    };
    const maqet = createMaqet(options);
    const progress = global.json
      ? undefined
      : renderProgress(maqet.progress$, io.progress ?? { isTTY: false, write: (t) => io.stderr(t.replace(/\n$/, "")) });
    try {
      if (parsed.commandName === "demo") {
        await runDemo(maqet, {
          json: global.json,
          dataDir: global.dataDir ?? defaultDataDir(io.env),
          print: io.stdout,
        });
        return 0;
      }
      const result = await parsed.command!.invoke(maqet, parsed.input, { env: io.env, confirm: io.confirm });
      if (isStreamedValues(result)) {
        // Values read from the store as they come (`events --follow`): the instance stays open
        // until the stream ends or Ctrl-C; one line each, text or JSON (JSONL).
        const command = parsed.command!.name;
        const lines$ = result.values$.pipe(
          map((value) => (global.json ? JSON.stringify(value) : renderResult(command, value))),
          filter((line) => line !== ""),
          map((line) => `${line}\n`),
        );
        return await pipeStream(streamedResult(lines$), { write: io.write ?? io.stdout, json: false });
      }
      if (isAttachedConsole(result)) {
        // Attached for as long as the user likes: release the store, record the detach afterwards.
        await maqet.close();
        const { attachment } = result;
        return await runAttached(attachment, io, async (end) => {
          const again = createMaqet(options);
          try {
            await again.recordConsoleDetached(attachment.vm, {
              session: attachment.session,
              mode: attachment.mode,
              reason: end.reason,
              since: attachment.since,
              ...(end.message ? { message: end.message } : {}),
            });
          } finally {
            await again.close();
          }
        });
      }
      if (isStreamedResult(result)) {
        // A stream may last hours: release the store (the embedded one admits one process) first.
        await maqet.close();
        return await pipeStream(result, { write: io.write ?? io.stdout, json: global.json });
      }
      io.stdout(
        global.json || parsed.command!.name === "qmp"
          ? JSON.stringify(result, null, 2)
          : global.format === "yaml"
            ? renderYaml(result)
            : renderResult(parsed.command!.name, result),
      );
      const code = parsed.command!.exitCode?.(parsed.input, result) ?? 0;
      log?.write(`exit ${code}`);
      return code;
    } finally {
      progress?.unsubscribe();
      await maqet.close();
    }
  } catch (error) {
    const code = reportError(error, global.json, io, global.debug || global.verbosity >= 3);
    log?.write(`exit ${code}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return code;
  }
}

function reportError(error: unknown, json: boolean, io: CliIo, debug = false): number {
  if (isMaqetError(error)) {
    io.stderr(`maqet: ${error.message}`);
    if (debug) io.stderr(debugTrace(error));
    if (json) io.stdout(JSON.stringify({ error: error.toJSON() }, null, 2));
    return error.exitCode;
  }
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  io.stderr(`maqet: internal error: ${message}\nThis is a bug; please report it with the command you ran.`);
  if (json) io.stdout(JSON.stringify({ error: { code: "INTERNAL", message: String(error) } }, null, 2));
  return 1;
}

function version(): string {
  try {
    // dist/src/cli/main.js and src/cli/main.ts both sit three levels below the package root.
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version?: string;
    };
    return pkg.version ?? "unknown";
  } catch {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
      version?: string;
    };
    return pkg.version ?? "unknown";
  }
}
