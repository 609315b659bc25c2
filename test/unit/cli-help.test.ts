/**
 * Help pages from the registry (groups, aligned columns) and "did you mean" suggestions for a
 * mistyped command, group command or option.
 */
import { describe, expect, it } from "vitest";
import { columns, renderHelp } from "../../src/cli/help.ts";
import { runCli } from "../../src/cli/main.ts";
import { parseArgs } from "../../src/cli/parse-args.ts";
import { editDistance, nearest } from "../../src/cli/suggest.ts";

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { env: {}, stdout: (t) => out.push(t), stderr: (t) => err.push(t) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

function refusal(argv: string[]): string {
  try {
    parseArgs(argv);
  } catch (error) {
    expect(error).toBeMaqetError("INVALID_ARGUMENT");
    return (error as Error).message;
  }
  throw new Error(`${argv.join(" ")} was accepted`);
}

/** The column where the description starts, for each indented two-column row of a section. */
function descriptionColumns(page: string, heading: string): number[] {
  const lines = page.split("\n");
  const from = lines.indexOf(heading) + 1;
  expect(from).toBeGreaterThan(0);
  const rows: string[] = [];
  for (const line of lines.slice(from)) {
    if (!line.startsWith("  ")) break;
    rows.push(line);
  }
  return rows.map((line) => line.slice(2).search(/ {2}\S/) + 2);
}

describe("help", () => {
  it.each(["snapshot", "disk"])("`%s --help` and `%s` alone list the group's commands (exit 0)", async (group) => {
    for (const argv of [[group, "--help"], [group], ["help", group]]) {
      const { code, out, err } = await cli(argv);
      expect(code).toBe(0);
      expect(err).toBe("");
      // `snapshot` is also MAQET's one-word form (`snapshot VM ACTION DRIVE [NAME]`): its page shows
      // that usage and the group's commands, as `qmp` does.
      expect(out).toMatch(new RegExp(`Usage: maqet ${group} <(command|vm)>`));
      expect(out).toMatch(new RegExp(`^  ${group} create <`, "m"));
      expect(out).toMatch(new RegExp(`^  ${group} (list|info) <`, "m"));
    }
  });

  it("a command that is also a group (qmp) shows its usage and its subcommands", () => {
    const page = renderHelp("qmp");
    expect(page).toContain("Usage: maqet qmp <vm> <command>");
    expect(page).toMatch(/^ {2}qmp keys <vm> <keys…> +Press keys/m);
  });

  it("columns line up on every page, whatever the longest name", () => {
    for (const [topic, heading] of [
      [undefined, "Commands:"],
      [undefined, "Global options:"],
      ["snapshot", "Commands:"],
      ["disk", "Commands:"],
      ["disk convert", "Options:"],
      ["stop", "Global options:"],
    ] as const) {
      const cols = new Set(descriptionColumns(renderHelp(topic), heading));
      expect(cols.size, `${topic ?? "maqet"} ${heading}`).toBe(1);
    }
    // Arguments, options and global options of one command share one column.
    const page = renderHelp("disk convert");
    const all = new Set([
      ...descriptionColumns(page, "Arguments:"),
      ...descriptionColumns(page, "Options:"),
      ...descriptionColumns(page, "Global options:"),
    ]);
    expect(all.size).toBe(1);
    expect(
      columns([
        ["a", "x"],
        ["longer", "y"],
      ]),
    ).toEqual(["  a       x", "  longer  y"]);
  });

  it("help for an unknown topic suggests the nearest command (exit 3)", async () => {
    const { code, err } = await cli(["help", "snapshto"]);
    expect(code).toBe(3);
    expect(err).toContain("Did you mean 'snapshot'?");
  });
});

describe("suggestions", () => {
  it("edit distance counts a swap of neighbours as one", () => {
    expect(editDistance("strat", "start")).toBe(1);
    expect(editDistance("stop", "stop")).toBe(0);
    expect(editDistance("", "abc")).toBe(3);
    expect(nearest("zzzzzz", ["start", "stop"])).toBeUndefined();
    expect(nearest("snap", ["snapshot", "start"])).toBe("snapshot");
  });

  it.each([
    [["strat", "web"], /unknown command 'strat'\. Did you mean 'start'\?/],
    [["satus", "web"], /Did you mean 'status'\?/],
    [["snapshot", "crate", "web", "x"], /unknown command 'snapshot crate'\. Did you mean 'snapshot create'\?/],
    [["disk", "inf", "a.img"], /Did you mean 'disk info'\?/],
    [["start", "web", "--tiemout", "3"], /unknown option '--tiemout'\. Did you mean '--timeout'\?/],
    [["stop", "web", "--froce"], /Did you mean '--force'\?/],
    [["ls", "--jsno"], /Did you mean '--json'\?/],
  ])("%j is refused (exit 3) with the nearest name", async (argv, message) => {
    expect(refusal(argv)).toMatch(message);
    const { code, err } = await cli(argv);
    expect(code).toBe(3);
    expect(err).toMatch(message);
  });

  it("nothing close: no suggestion, still the --help hint", () => {
    const message = refusal(["frobnicate"]);
    expect(message).not.toContain("Did you mean");
    expect(message).toContain("maqet --help");
  });
});
