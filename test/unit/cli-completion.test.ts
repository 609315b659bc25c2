/**
 * `maqet completion bash|zsh|fish`, generated from the registry. The bash script is loaded into
 * a real bash and driven the way readline drives it (COMP_WORDS / COMP_CWORD, then COMPREPLY);
 * zsh and fish scripts are syntax-checked by their shells when installed.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { COMMANDS } from "../../src/api/commands.ts";
import { completionScript } from "../../src/cli/completion.ts";
import { runCli } from "../../src/cli/main.ts";

const dir = mkdtempSync(join(tmpdir(), "maqet-completion-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(shell: string): string {
  const file = join(dir, `maqet.${shell}`);
  writeFileSync(file, completionScript(shell));
  return file;
}

const sh = (word: string) => `'${word.replace(/'/g, "'\\''")}'`;

/** What bash offers for each line typed so far (the last word is the one being completed); one bash for all. */
function completeAll(lines: readonly string[][]): string[][] {
  const body = lines
    .map((words) => {
      const all = ["maqet", ...words];
      return `COMP_WORDS=(${all.map(sh).join(" ")}); COMP_CWORD=${all.length - 1}; COMPREPLY=(); _maqet; echo "\${COMPREPLY[*]}"`;
    })
    .join("\n");
  const out = execFileSync("bash", ["--norc", "-c", `source ${sh(script("bash"))}\n${body}`], { encoding: "utf8" });
  return out
    .split("\n")
    .slice(0, lines.length)
    .map((line) => line.split(" ").filter((w) => w !== ""));
}

const complete = (...words: string[]): string[] => completeAll([words])[0]!;

function hasShell(shell: string): boolean {
  try {
    execFileSync(shell, ["-c", "true"]);
    return true;
  } catch {
    return false;
  }
}

describe("bash completion", () => {
  it("registers itself for maqet", () => {
    const out = execFileSync("bash", ["--norc", "-c", 'source "$1"; complete -p maqet', "bash", script("bash")], {
      encoding: "utf8",
    });
    expect(out.trim()).toBe("complete -o default -F _maqet maqet");
  });

  it("completes commands, group commands, options per command, and help topics", () => {
    const st = complete("st");
    expect(st).toEqual(expect.arrayContaining(["start", "stop", "status", "stats"]));
    expect(st.every((w) => w.startsWith("st"))).toBe(true);
    expect(complete("sn")).toEqual(["snapshot"]);
    expect(complete("snapshot", "")).toEqual(expect.arrayContaining(["create", "load", "delete", "list"]));
    expect(complete("disk", "c")).toEqual(["create", "check", "convert"]);
    expect(complete("start", "web", "--ti")).toEqual(["--timeout"]);
    expect(complete("snapshot", "create", "web", "--ov")).toEqual(["--overwrite"]);
    expect(complete("help", "sn")).toEqual(["snapshot"]);
    // A value-taking global option's value is not a command: the next word still completes commands.
    expect(complete("--db", "postgres://x", "sta")).toEqual(expect.arrayContaining(["start", "status", "stats"]));
    expect(complete("--db", "postgres://x", "sta")).not.toContain("postgres://x");
    // `history --version N` is history's option (a value), listed once.
    const history = complete("history", "web", "--");
    expect(history.filter((w) => w === "--version")).toHaveLength(1);
    expect(complete("history", "web", "--version", "3", "--at")).toEqual(["--at"]);
  });

  it("every registry command and option completes", () => {
    const cases: Array<{ label: string; words: string[]; expected: string }> = [];
    for (const command of COMMANDS) {
      const words = command.name.split(" ");
      cases.push({
        label: command.name,
        words: words.length === 1 ? words : [words[0]!, words[1]!],
        expected: words.at(-1)!,
      });
      for (const option of command.options) {
        cases.push({
          label: `${command.name} --${option.name}`,
          words: [...words, "x", `--${option.name}`],
          expected: `--${option.name}`,
        });
      }
    }
    const offered = completeAll(cases.map((c) => c.words));
    for (const [i, c] of cases.entries()) expect(offered[i], c.label).toContain(c.expected);
  });
});

describe("zsh and fish completion", () => {
  it.skipIf(!hasShell("zsh"))("the zsh script parses (zsh -n; skipped when zsh is not installed)", () => {
    execFileSync("zsh", ["-n", script("zsh")]);
    expect(completionScript("zsh")).toContain("#compdef maqet");
  });
  it.skipIf(!hasShell("fish"))(
    "the fish script parses and names every command (skipped when fish is not installed)",
    () => {
      execFileSync("fish", ["--no-execute", script("fish")]);
      const text = completionScript("fish");
      for (const c of COMMANDS) expect(text).toContain(`'${c.name.split(" ").at(-1)}'`);
    },
  );
  it("an unknown shell is invalid input (exit 3)", async () => {
    const err: string[] = [];
    const code = await runCli(["completion", "tcsh"], { env: {}, stdout: () => {}, stderr: (t) => err.push(t) });
    expect(code).toBe(3);
    expect(err.join("")).toMatch(/bash, zsh or fish/);
  });
});
