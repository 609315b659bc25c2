/**
 * The `maqet` command line: parse, run one library operation, render, map errors to exit codes
 * (0 ok, 1 failure, 2 timeout, 3 invalid input or not found, 4 refused for security).
 *
 * @example
 * ```ts
 * const code = await runCli(["status", "web", "--json"], { env: process.env, stdout, stderr });
 * ```
 */
import { filter, map } from "rxjs";
import { defaultDataDir } from "../adapters/default-dirs.ts";
import { loadGlobalConfig } from "../adapters/load-global-config.ts";
import { packageVersion } from "../adapters/package-version.ts";
import { preferBaselineWasm } from "../adapters/wasm-tiering.ts";
import { isAttachedConsole } from "../api/commands/attached-console.ts";
import { isStreamedResult, streamedResult } from "../api/commands/streamed-result.ts";
import { isStreamedValues } from "../api/commands/streamed-values.ts";
import { createMaqet } from "../api/maqet.ts";
import { isMaqetError } from "../errors/maqet-error.ts";
import { colorEnabled, NO_PAINT, type Paint, paintFor } from "./color.ts";
import { runAttached } from "./console-session.ts";
import { runDemo } from "./demo.ts";
import { renderHelp } from "./help.ts";
import { watchInterrupt } from "./interrupt.ts";
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
  /** Which of stdout and stderr are terminals (colour only there; see color.ts). Default: neither. */
  tty?: { stdout?: boolean; stderr?: boolean };
  /**
   * Ctrl-C handling for commands that wait (see interrupt.ts): where SIGINT comes from and how
   * the process exits. Absent (tests calling runCli in-process): Ctrl-C is not watched.
   */
  interrupt?: { signals: Pick<NodeJS.Process, "on" | "off">; exit(code: number): void };
}

/** Commands Ctrl-C may interrupt while they wait on a VM: they say what they leave running. */
const WAITING_COMMANDS = new Set(["start", "stop", "rm", "apply", "edit", "migrate"]);

/**
 * `via`: run the command's operations through this agent (a command that needs the terminal,
 * such as `ssh` or `edit`, runs here while an agent holds the store).
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
  let paints = cliPaints(io, global);
  try {
    const parsed = parseArgs(argv);
    global = parsed.global;
    log = global.logFile === undefined ? undefined : openRunLog(global.logFile, argv);
    io = withRunLog(io, log);
    paints = cliPaints(io, global);
    if (global.configDir !== undefined) io = { ...io, env: { ...io.env, MAQET_CONFIG_DIR: global.configDir } };
    if (global.version) {
      io.stdout(packageVersion());
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
      onWarning: (message: string) => io.stderr(`${paints.err.yellow("maqet: warning:")} ${message}`),
      // Test only (docs/crash-points.md): inert unless set.
      crashAt: io.env.MAQET_CRASH_AT,
    };
    // One command per process: PGlite's WebAssembly is not worth optimising (wasm-tiering.ts).
    if (via === undefined) preferBaselineWasm();
    const maqet = createMaqet(options);
    const progress = global.json
      ? undefined
      : renderProgress(maqet.progress$, {
          ...(io.progress ?? { isTTY: false, write: (t: string) => io.stderr(t.replace(/\n$/, "")) }),
          paint: paints.err,
        });
    const vm = typeof parsed.input.vm === "string" ? parsed.input.vm : undefined;
    const releaseInterrupt =
      io.interrupt && parsed.command && WAITING_COMMANDS.has(parsed.command.name)
        ? watchInterrupt({
            command: parsed.command.name,
            ...(vm === undefined ? {} : { vm }),
            progress$: maqet.progress$,
            stderr: io.stderr,
            beforeNote: () => progress?.unsubscribe(),
            close: () => maqet.close(),
            ...io.interrupt,
          })
        : undefined;
    try {
      if (parsed.commandName === "demo") {
        await runDemo(maqet, {
          json: global.json,
          dataDir: global.dataDir ?? defaultDataDir(io.env),
          print: io.stdout,
        });
        return 0;
      }
      // `confirm` read when a command asks (the process's asks whether stdin is a terminal).
      const result = await parsed.command!.invoke(maqet, parsed.input, {
        env: io.env,
        get confirm() {
          return io.confirm;
        },
      });
      if (isStreamedValues(result)) {
        // Values read from the store as they come (`events --follow`): the instance stays open
        // until the stream ends or Ctrl-C; one line each, text or JSON (JSONL).
        const command = parsed.command!.name;
        const lines$ = result.values$.pipe(
          map((value) => (global.json ? JSON.stringify(value) : renderResult(command, value, paints.out))),
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
        return await pipeStream(result, {
          write: io.write ?? io.stdout,
          json: global.json,
          ...(vm === undefined
            ? {}
            : {
                onInterrupt: () =>
                  io.stderr(
                    `\nmaqet: stopped following VM '${vm}'; the VM keeps running. Stop it with \`maqet stop ${vm}\`.`,
                  ),
              }),
        });
      }
      io.stdout(
        global.json || parsed.command!.name === "qmp"
          ? JSON.stringify(result, null, 2)
          : global.format === "yaml"
            ? renderYaml(result)
            : renderResult(parsed.command!.name, result, paints.out),
      );
      const code = parsed.command!.exitCode?.(parsed.input, result) ?? 0;
      log?.write(`exit ${code}`);
      return code;
    } finally {
      releaseInterrupt?.();
      progress?.unsubscribe();
      await maqet.close();
    }
  } catch (error) {
    const code = reportError(error, global.json, io, global.debug || global.verbosity >= 3, paints.err);
    log?.write(`exit ${code}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return code;
  }
}

/** Colours for stdout and stderr, each only when it is a terminal (and NO_COLOR / --color allow). */
function cliPaints(io: CliIo, global: GlobalOptions): { out: Paint; err: Paint } {
  return {
    out: paintFor(!global.json && colorEnabled({ isTTY: io.tty?.stdout }, io.env, global.color)),
    err: paintFor(colorEnabled({ isTTY: io.tty?.stderr }, io.env, global.color)),
  };
}

function reportError(error: unknown, json: boolean, io: CliIo, debug = false, paint: Paint = NO_PAINT): number {
  if (isMaqetError(error)) {
    io.stderr(`${paint.red("maqet:")} ${error.message}`);
    if (debug) io.stderr(debugTrace(error));
    if (json) io.stdout(JSON.stringify({ error: error.toJSON() }, null, 2));
    return error.exitCode;
  }
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  io.stderr(`maqet: internal error: ${message}\nThis is a bug; please report it with the command you ran.`);
  if (json) io.stdout(JSON.stringify({ error: { code: "INTERNAL", message: String(error) } }, null, 2));
  return 1;
}
