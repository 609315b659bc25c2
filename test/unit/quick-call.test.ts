/**
 * The executable's first look at a call (src/cli/quick-call.ts quickTarget): which calls it hands
 * whole to the agent (`POST /v1/cli`) and on which socket, from argv and the environment alone.
 * The table is built as scripts/build.mjs bakes it, from the registry (oneShotTable of
 * COMMAND_ROUTES, the global options that take a value), so these cases follow the registry. Also
 * which commands are one-shot at all (src/cli/one-shot-commands.ts).
 */
import { describe, expect, it } from "vitest";
import { COMMAND_ROUTES, routeOf } from "../../src/api/command-routes.ts";
import { isOneShot, oneShotTable } from "../../src/cli/one-shot-commands.ts";
import { GLOBAL_OPTIONS } from "../../src/cli/parse-args.ts";
import { type QuickTable, quickTarget } from "../../src/cli/quick-call.ts";

const TABLE: QuickTable = {
  commands: oneShotTable(COMMAND_ROUTES),
  globalValues: GLOBAL_OPTIONS.filter((o) => o.type !== "boolean").flatMap((o) => [o.name, ...(o.aliases ?? [])]),
  version: "9.9.9-test",
};
const ENV = { XDG_RUNTIME_DIR: "/run/user/4242", HOME: "/home/ada" };
const DEFAULT_SOCKET = "/run/user/4242/maqet/agent.sock";

const target = (line: string, env: Record<string, string | undefined> = ENV) =>
  quickTarget(line === "" ? [] : line.split(" "), env, TABLE);

describe("quickTarget: which calls are handed whole to the agent", () => {
  it.each([
    "ls",
    "list",
    "ls --json",
    "status web",
    "status web --json",
    "qmp web query-status",
    "snapshot ls web",
    "snapshot list web",
    "history web",
    "info",
    "-v ls",
    "ls --color never",
  ])("'%s' goes to the default socket", (line) => {
    expect(target(line)).toEqual({ socket: DEFAULT_SOCKET });
  });

  it.each([
    ["start web", "waits and draws progress"],
    ["stop web", "waits"],
    ["rm web", "waits"],
    ["remove web", "an alias of rm"],
    ["add x.yaml", "names a file"],
    ["events", "streams"],
    ["events --follow", "streams"],
    ["console web", "streams"],
    ["ssh web", "needs the terminal"],
    ["edit web", "needs the terminal"],
    ["apply x.yaml", "a file and waits"],
    ["migrate web host2", "long"],
    ["disk info d.qcow2", "names a file"],
    ["snapshot create web s1", "two words: progress"],
    ["qmp screendump web out.ppm", "two words: a file"],
    ["frobnicate", "no such command"],
    ["", "no command: help"],
    ["--no-agent ls", "--no-agent"],
    ["ls --no-agent", "--no-agent after the command"],
    ["ls --db postgres://x", "another store"],
    ["ls --db=postgres://x", "another store (=)"],
    ["ls --data-dir d", "another store"],
    ["ls --maqet-data-dir d", "another store (alias)"],
    ["--runtime-dir d ls", "another runtime directory (so another socket)"],
    ["--config-dir d ls", "another global config"],
    ["-h", "help"],
    ["ls -h", "help"],
    ["ls --help", "help"],
    ["--help ls", "help"],
    ["--version", "version"],
    ["-V", "version"],
    ["--log-file f ls", "a run log of this process's"],
    ["ls --log-file=f", "a run log of this process's"],
    ["ls --", "-- anywhere"],
    ["qmp web -- query-status", "-- anywhere"],
    ["--agent", "--agent without its value"],
    ["--agent http://127.0.0.1:9 ls", "an agent over TCP"],
    ["ls --agent=https://h:9", "an agent over TCP"],
  ])("'%s' stays with the usual path (%s)", (line) => {
    expect(target(line)).toBeUndefined();
  });

  it("the environment: MAQET_NO_AGENT=1, MAQET_DATABASE_URL, MAQET_AGENT=http://… keep the usual path", () => {
    expect(target("ls", { ...ENV, MAQET_NO_AGENT: "1" })).toBeUndefined();
    expect(target("ls", { ...ENV, MAQET_DATABASE_URL: "postgres://db/maqet" })).toBeUndefined();
    expect(target("ls", { ...ENV, MAQET_AGENT: "http://127.0.0.1:7777" })).toBeUndefined();
    expect(target("ls", { ...ENV, MAQET_AGENT: "https://agent.example:7777" })).toBeUndefined();
    // Values that do not say so leave the call quick (as agent-target.ts reads them).
    expect(target("ls", { ...ENV, MAQET_NO_AGENT: "0" })).toEqual({ socket: DEFAULT_SOCKET });
    expect(target("ls", { ...ENV, MAQET_DATABASE_URL: "" })).toEqual({ socket: DEFAULT_SOCKET });
    expect(target("ls", { ...ENV, MAQET_AGENT: "" })).toEqual({ socket: DEFAULT_SOCKET });
  });

  it("the socket: $XDG_RUNTIME_DIR/maqet/agent.sock, /tmp/maqet-UID without it, MAQET_AGENT, --agent (as typed, before or after the command)", () => {
    expect(target("ls", { HOME: "/home/ada" })).toEqual({ socket: `/tmp/maqet-${process.getuid?.() ?? 0}/agent.sock` });
    expect(target("ls", { ...ENV, MAQET_AGENT: "/srv/a.sock" })).toEqual({ socket: "/srv/a.sock" });
    expect(target("--agent /srv/b.sock ls")).toEqual({ socket: "/srv/b.sock", agent: "/srv/b.sock" });
    expect(target("--agent=/srv/b.sock ls")).toEqual({ socket: "/srv/b.sock", agent: "/srv/b.sock" });
    expect(target("ls --agent /srv/b.sock")).toEqual({ socket: "/srv/b.sock", agent: "/srv/b.sock" });
    expect(target("status web --agent=/srv/b.sock --json")).toEqual({ socket: "/srv/b.sock", agent: "/srv/b.sock" });
    // --agent wins over MAQET_AGENT, as in agent-target.ts.
    expect(target("ls --agent /srv/b.sock", { ...ENV, MAQET_AGENT: "/srv/a.sock" })).toEqual({
      socket: "/srv/b.sock",
      agent: "/srv/b.sock",
    });
    // --agent's value is not a command word: `--agent ls start web` names a socket called ls.
    expect(target("--agent ls start web")).toBeUndefined();
    expect(target("--agent start ls")).toEqual({ socket: "start", agent: "start" });
  });

  it("a global option's value before the command is skipped, not read as the command", () => {
    expect(target("--color never ls")).toEqual({ socket: DEFAULT_SOCKET });
    expect(target("--output json ls")).toEqual({ socket: DEFAULT_SOCKET });
    expect(target("--format json status web")).toEqual({ socket: DEFAULT_SOCKET });
    expect(target("--color=never ls")).toEqual({ socket: DEFAULT_SOCKET });
    // The value looks like a quick command, the command is not: stays.
    expect(target("--color ls start web")).toBeUndefined();
    expect(target("--output ls snapshot create web s1")).toBeUndefined();
    // A boolean global option takes no value: the next word is the command.
    expect(target("--json ls")).toEqual({ socket: DEFAULT_SOCKET });
    expect(target("--json start web")).toBeUndefined();
  });
});

describe("oneShotTable / isOneShot: the commands that may be handed over", () => {
  const table = oneShotTable(COMMAND_ROUTES);

  it("quick answers are one-shot; progress, waits, streams, files and the terminal are not", () => {
    for (const name of ["ls", "list", "status", "qmp", "history", "info", "inspect", "snapshot ls", "audit", "stats"]) {
      expect(table[name], name).toBe(true);
    }
    for (const name of [
      "start",
      "stop",
      "rm",
      "add",
      "apply",
      "edit",
      "events",
      "console",
      "ssh",
      "migrate",
      "disk info",
      "disk create",
      "snapshot create",
      "snapshot load",
      "snapshot delete",
      "qmp screendump",
    ]) {
      expect(table[name], name).toBe(false);
    }
  });

  it("every command and alias is in the table, an alias as its command", () => {
    for (const route of COMMAND_ROUTES) {
      expect(table[route.command], route.command).toBe(isOneShot(route));
      for (const alias of route.spec.aliases ?? [])
        expect(table[alias], `${alias} (${route.command})`).toBe(table[route.command]);
    }
    expect(Object.keys(table).length).toBe(
      COMMAND_ROUTES.reduce((n, route) => n + 1 + (route.spec.aliases?.length ?? 0), 0),
    );
  });

  it("isOneShot reads the route: streams, local paths, a config file or a terminal make a command stay", () => {
    const ls = routeOf("ls")!;
    expect(isOneShot(ls)).toBe(true);
    expect(isOneShot({ ...ls, streams: "text" } as typeof ls)).toBe(false);
    expect(isOneShot({ ...ls, localPaths: ["path"] } as typeof ls)).toBe(false);
    expect(isOneShot({ ...ls, configFile: "files" } as typeof ls)).toBe(false);
    expect(isOneShot({ ...ls, needsTerminal: () => true } as typeof ls)).toBe(false);
    expect(isOneShot({ ...ls, command: "start" } as typeof ls)).toBe(false);
  });
});
