import { afterEach, describe, expect, it } from "vitest";
import type { CommandSpec } from "../../src/api/commands/command-spec.ts";
import { COMMANDS } from "../../src/api/commands.ts";
import { parseArgs } from "../../src/cli/parse-args.ts";
import { errorOf } from "../support/failure.ts";

const fake: CommandSpec = {
  name: "grp act",
  summary: "test",
  positionals: [
    { name: "vm", description: "vm" },
    { name: "keys", description: "keys", variadic: true },
  ],
  options: [{ name: "hold", type: "number", description: "ms" }],
  examples: [],
  invoke: async () => undefined,
};

describe("CLI argument parsing", () => {
  afterEach(() => {
    const i = COMMANDS.indexOf(fake);
    if (i >= 0) (COMMANDS as CommandSpec[]).splice(i, 1);
  });

  it("options before or after the command, --opt=value and --opt value", () => {
    const a = parseArgs(["--json", "stop", "web", "--timeout", "5", "--force"]);
    expect(a.command?.name).toBe("stop");
    expect(a.input).toEqual({ vm: "web", timeout: 5, force: true });
    expect(a.global.json).toBe(true);
    const b = parseArgs(["stop", "--timeout=2.5", "web", "--db", "postgres://x"]);
    expect(b.input).toEqual({ vm: "web", timeout: 2.5 });
    expect(b.global.db).toBe("postgres://x");
  });

  it("`--` ends options, so a VM may be named like an option's value", () => {
    expect(parseArgs(["qmp", "--", "web", "query-status"]).input).toEqual({ vm: "web", command: "query-status" });
  });

  it("two-word commands and a variadic last positional", () => {
    (COMMANDS as CommandSpec[]).push(fake);
    const p = parseArgs(["grp", "act", "web", "ctrl", "alt", "--hold", "100", "f1"]);
    expect(p.command?.name).toBe("grp act");
    expect(p.input).toEqual({ vm: "web", keys: ["ctrl", "alt", "f1"], hold: 100 });
  });

  it.each([
    [["bogus"], /unknown command 'bogus'/],
    [["start"], /missing <vm>/],
    [["start", "a", "b"], /unexpected argument 'b'/],
    [["start", "a", "--nope"], /unknown option '--nope'/],
    [["start", "a", "--timeout"], /--timeout needs a value/],
    [["start", "a", "--timeout", "soon"], /non-negative number/],
    [["stop", "a", "--force=maybe"], /takes no value/],
  ])("%j is refused with exit 3 and a hint", (argv, message) => {
    const error = errorOf(() => parseArgs(argv));
    expect(error).toBeMaqetError("INVALID_ARGUMENT");
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toMatch(/--help/);
  });
});
