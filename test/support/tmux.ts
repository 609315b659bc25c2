/**
 * A real terminal for e2e tests: a tmux server of its own (its own socket, so nothing else's
 * sessions are touched), one pane running a shell command, read back with its escape codes
 * (`capture-pane -e`), and keys sent to it (`send-keys C-c` is a real Ctrl-C from the terminal:
 * SIGINT to the foreground process group). scripts/setup.sh --test installs tmux.
 *
 * @example
 * ```ts
 * const pane = await openPane("node dist/src/cli/bin.js ls", { env, cwd });
 * await pane.waitFor(/NAME/);
 * await pane.close();
 * ```
 */
import { execFile, execFileSync } from "node:child_process";
import { waitUntil } from "./poll.ts";

export interface Pane {
  /** What the pane shows now (escape codes kept, wrapped lines joined). */
  capture(): Promise<string>;
  /** Waits until the pane shows `pattern`; returns the capture. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends keys, tmux names (`C-c`, `Enter`). */
  sendKeys(...keys: string[]): Promise<void>;
  close(): Promise<void>;
}

/** Why tmux cannot be used here, or undefined when it can. */
export function tmuxMissing(): string | undefined {
  try {
    execFileSync("tmux", ["-V"], { stdio: "ignore" });
    return undefined;
  } catch {
    return "tmux is not installed (scripts/setup.sh --test installs it)";
  }
}

let panes = 0;

function tmux(socket: string, args: string[], env?: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("tmux", ["-L", socket, ...args], { env: env ?? process.env, timeout: 30_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`tmux ${args[0]}: ${error.message} ${stderr}`)) : resolve(stdout),
    );
  });
}

/**
 * Runs `command` (a shell command line) in a fresh 220×50 pane whose shell has exactly `env`;
 * after the command the pane prints `EXIT=<code>` and stays open.
 */
export async function openPane(command: string, options: { env: Record<string, string>; cwd: string }): Promise<Pane> {
  const socket = `maqet-test-${process.pid}-${++panes}`;
  const env = { ...options.env, TERM: "xterm-256color" };
  // The server starts with this environment, so the pane's shell has it (and nothing of ours).
  await tmux(
    socket,
    [
      "-f",
      "/dev/null",
      "new-session",
      "-d",
      "-x",
      "220",
      "-y",
      "50",
      "-c",
      options.cwd,
      `${command}; echo "EXIT=$?"; exec sleep 600`,
    ],
    env,
  );
  const capture = async () => tmux(socket, ["capture-pane", "-p", "-e", "-J", "-S", "-200"]);
  return {
    capture,
    waitFor: (pattern, timeoutMs = 120_000) =>
      waitUntil(`the terminal to show ${pattern}`, capture, (text) => pattern.test(text), {
        timeoutMs,
        everyMs: 200,
      }),
    sendKeys: async (...keys) => void (await tmux(socket, ["send-keys", ...keys])),
    close: async () => {
      await tmux(socket, ["kill-server"]).catch(() => undefined);
    },
  };
}

/** The text without its escape codes (for matching words across colour changes). */
export function plain(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing escape codes is the point
  return text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");
}
