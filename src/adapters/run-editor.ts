/**
 * `maqet edit`'s editor: the text goes to a private temporary file (0600 in a 0700 directory),
 * `$VISUAL` / `$EDITOR` (else `vi`) runs on it with the terminal, and the edited text comes
 * back. No shell: the variable is split into words by {@link splitCommandLine} (quotes and
 * backslashes as a shell reads them, nothing expanded), and the file's absolute path is the last
 * argument.
 *
 * @example
 * ```ts
 * const session = await openEditSession("web.yaml", "memory: 1G\n");
 * const edited = await session.edit({ EDITOR: "nano" });
 * await session.discard();
 * ```
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { MaqetError } from "../errors/maqet-error.ts";

/**
 * Splits a command line into words as a POSIX shell would, without expanding anything:
 * `'…'` literal, `"…"` with `\"` and `\\`, a backslash escapes the next character outside quotes.
 *
 * @example
 * ```ts
 * splitCommandLine(`code --wait`); // ["code", "--wait"]
 * splitCommandLine(`"/opt/My Editor/bin/ed" -n`); // ["/opt/My Editor/bin/ed", "-n"]
 * ```
 */
export function splitCommandLine(text: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === "\\" && (text[i + 1] === '"' || text[i + 1] === "\\")) word += text[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote !== undefined) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `The editor command ${JSON.stringify(text)} has an unclosed ${quote} quote. Fix $EDITOR.`,
    );
  }
  if (inWord) words.push(word);
  return words;
}

/** The editor's argv from the environment: `$VISUAL`, else `$EDITOR`, else `vi`. */
export function editorCommand(env: Record<string, string | undefined>): string[] {
  const value = env.VISUAL?.trim() || env.EDITOR?.trim() || "vi";
  const words = splitCommandLine(value);
  if (words.length === 0) return ["vi"];
  return words;
}

export interface EditSession {
  /** The temporary file (kept when the edit could not be applied, so nothing typed is lost). */
  path: string;
  /** Runs the editor on the file and returns its text afterwards. */
  edit(env: Record<string, string | undefined>): Promise<string>;
  /** Removes the temporary file and its directory. */
  discard(): Promise<void>;
}

/**
 * Writes `text` to `<tmp>/maqet-edit-XXXX/<fileName>` (0700 directory, 0600 file).
 *
 * @example
 * ```ts
 * const session = await openEditSession("web.yaml", text);
 * ```
 */
export async function openEditSession(fileName: string, text: string): Promise<EditSession> {
  const dir = await mkdtemp(join(tmpdir(), "maqet-edit-"));
  const path = join(dir, fileName.replace(/[^A-Za-z0-9._-]/g, "_"));
  await writeFile(path, text, { mode: 0o600, flag: "wx" });
  return {
    path,
    edit: async (env) => {
      const [command, ...args] = editorCommand(env);
      const result = await execa(command!, [...args, path], { stdio: "inherit", reject: false, env, extendEnv: false });
      if (result.failed || result.exitCode !== 0) {
        const why =
          result.exitCode === undefined
            ? (result.shortMessage ?? "it could not run")
            : `it exited with code ${result.exitCode}`;
        throw new MaqetError(
          "INVALID_ARGUMENT",
          `The editor (${[command, ...args].join(" ")}) failed: ${why}. Nothing was applied; set $EDITOR to an editor that waits (e.g. EDITOR="code --wait").`,
          { details: { editor: command } },
        );
      }
      return readFile(path, "utf8");
    },
    discard: () => rm(dir, { recursive: true, force: true }),
  };
}
