/**
 * docs/cli.md documents every command and option the registry (and the CLI's own commands)
 * has: a new command or flag without its line in the reference fails here, with what to add.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { allCommandDescriptions } from "../../src/cli/cli-commands.ts";
import { GLOBAL_OPTIONS } from "../../src/cli/parse-args.ts";

const doc = readFileSync(join(import.meta.dirname, "../../docs/cli.md"), "utf8");

/** `### a, b` sections: each heading name → the section's text (up to the next ## or ###). */
function sections(): Map<string, string> {
  const out = new Map<string, string>();
  const parts = doc.split(/^(?=#{2,3} )/m);
  for (const part of parts) {
    const heading = /^### (.+)$/m.exec(part);
    if (!heading || !part.startsWith("### ")) continue;
    for (const name of heading[1]!.split(",")) out.set(name.replace(/`/g, "").trim(), part);
  }
  return out;
}

function between(start: string, end: RegExp): string {
  const from = doc.indexOf(start);
  expect(from, `docs/cli.md has no '${start}'`).toBeGreaterThanOrEqual(0);
  const rest = doc.slice(from + start.length);
  const stop = rest.search(end);
  return stop === -1 ? rest : rest.slice(0, stop);
}

describe("docs/cli.md covers the registry", () => {
  const bySection = sections();
  /** Every section about a command: headed by its name, its first word, or a heading starting with that word. */
  const sectionOf = (name: string): string | undefined => {
    const first = name.split(" ")[0]!;
    const texts = [...bySection.entries()]
      .filter(([heading]) => heading === name || heading === first || heading.startsWith(`${first} `))
      .map(([, text]) => text);
    return texts.length > 0 ? [...new Set(texts)].join("\n") : undefined;
  };

  it("every command is in the command table and has a section", () => {
    const table = between("## Commands", /^### /m);
    const missing: string[] = [];
    for (const command of allCommandDescriptions()) {
      const [first] = command.name.split(" ");
      const section = sectionOf(command.name);
      if (!table.includes(first!)) missing.push(`'${command.name}' in the table under ## Commands`);
      if (section === undefined) missing.push(`a '### ${first}' section for '${command.name}'`);
      else if (!section.includes(`maqet ${command.name}`)) missing.push(`'maqet ${command.name}' in '### ${first}'`);
    }
    expect(missing, "add these to docs/cli.md").toEqual([]);
  });

  it("every option of every command is in that command's section", () => {
    const missing: string[] = [];
    for (const command of allCommandDescriptions()) {
      const section = sectionOf(command.name) ?? "";
      for (const option of command.options) {
        if (!section.includes(`--${option.name}`)) missing.push(`${command.name} --${option.name}`);
      }
    }
    expect(missing, "document these options in their command's section of docs/cli.md").toEqual([]);
  });

  it("every global option is in ## Global options", () => {
    const globals = between("## Global options", /^## /m);
    const missing = GLOBAL_OPTIONS.filter((o) => !globals.includes(`--${o.name}`)).map((o) => `--${o.name}`);
    expect(missing, "add these to ## Global options in docs/cli.md").toEqual([]);
  });
});
