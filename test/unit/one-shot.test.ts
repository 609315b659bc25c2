/**
 * The agent's side of a CLI call handed whole (src/cli/one-shot.ts): the body checked
 * (oneShotRequestOf), the call parsed with the registry, refused with `{fallBack}` when it belongs
 * to the client, else run on the agent's routes (here a fake `local` answering as the agent's
 * routes would, through localResponse) and rendered as the CLI renders: the output chunks in order,
 * stdout and stderr apart, the exit code, colour as the client's environment and terminals say.
 */
import { describe, expect, it } from "vitest";
import { type OneShotAnswer, type OneShotRequest, oneShotRequestOf, runOneShot } from "../../src/cli/one-shot.ts";
import { type AgentRequest, type AgentResponse, localResponse } from "../../src/client/agent-transport.ts";
import { MaqetError } from "../../src/errors/maqet-error.ts";
import { plain } from "../support/tmux.ts";

const VERSION = "9.9.9-test";
const VMS = [
  { name: "web", id: "0190aaaa-0000-7000-8000-000000000001", state: "running", pid: 4242, memory: "64M", cpu: 1 },
  { name: "db", id: "0190aaaa-0000-7000-8000-000000000002", state: "stopped", pid: null, memory: "32M", cpu: 2 },
];
const NOT_FOUND = {
  error: { code: "VM_NOT_FOUND", message: "VM 'nope' not found.", exitCode: 3, details: { vm: "nope" } },
};

/** A fake of the agent's routes: GET /v1/vms, GET /v1/vms/web, POST /v1/vms/web/qmp; 404 else. */
function fakeAgent() {
  const calls: AgentRequest[] = [];
  const local = async (req: AgentRequest): Promise<AgentResponse> => {
    calls.push(req);
    if (req.method === "GET" && req.path === "/v1/vms") return localResponse(200, VMS);
    if (req.method === "GET" && req.path === "/v1/vms/web") return localResponse(200, VMS[0]);
    if (req.method === "POST" && req.path === "/v1/vms/web/qmp") return localResponse(200, { status: "running" });
    return localResponse(404, NOT_FOUND);
  };
  return { calls, local };
}

async function oneShot(argv: string[], extra: Partial<OneShotRequest> = {}) {
  const agent = fakeAgent();
  const answer = await runOneShot({ argv, version: VERSION, ...extra }, { version: VERSION, local: agent.local });
  return { answer, calls: agent.calls };
}

const LS_TABLE = [
  "NAME  STATE    PID   DETAIL  MEMORY  CPU  ID",
  "web   running  4242  -       64M     1    0190aaaa-0000-7000-8000-000000000001",
  "db    stopped  -     -       32M     2    0190aaaa-0000-7000-8000-000000000002",
  "",
].join("\n");

describe("oneShotRequestOf: the body of POST /v1/cli", () => {
  it.each([
    ["null", null, "must be a JSON object"],
    ["a list", [], "must be a JSON object"],
    ["a string", "ls", "must be a JSON object"],
    ["no argv", { version: VERSION }, "'argv'"],
    ["argv a string", { argv: "ls", version: VERSION }, "'argv'"],
    ["argv with a number", { argv: ["status", 1], version: VERSION }, "'argv'"],
    ["no version", { argv: ["ls"] }, "'version'"],
    ["version a number", { argv: ["ls"], version: 1 }, "'version'"],
    ["agent a number", { argv: ["ls"], version: VERSION, agent: 7 }, "'agent'"],
    ["env a string", { argv: ["ls"], version: VERSION, env: "NO_COLOR=1" }, "'env'"],
    ["env null", { argv: ["ls"], version: VERSION, env: null }, "'env'"],
    ["env.NO_COLOR a number", { argv: ["ls"], version: VERSION, env: { NO_COLOR: 1 } }, "'env.NO_COLOR'"],
  ])("%s: INVALID_ARGUMENT naming what is wrong", (_what, body, says) => {
    let thrown: unknown;
    try {
      oneShotRequestOf(body);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeMaqetError("INVALID_ARGUMENT");
    expect((thrown as MaqetError).message).toContain(says);
    expect((thrown as MaqetError).message).toContain("POST /v1/cli");
  });

  it("a good body: only the colour variables kept, tty as booleans", () => {
    expect(
      oneShotRequestOf({
        argv: ["ls", "--json"],
        version: VERSION,
        agent: "/a.sock",
        env: { NO_COLOR: "1", TERM: "xterm", PATH: "/evil", MAQET_DATABASE_URL: "postgres://x" },
        tty: { stdout: true, stderr: "yes" },
      }),
    ).toEqual({
      argv: ["ls", "--json"],
      version: VERSION,
      agent: "/a.sock",
      env: { NO_COLOR: "1", TERM: "xterm" },
      tty: { stdout: true, stderr: false },
    });
    expect(oneShotRequestOf({ argv: [], version: VERSION })).toEqual({
      argv: [],
      version: VERSION,
      env: {},
      tty: { stdout: false, stderr: false },
    });
  });
});

describe("runOneShot: the call run and rendered as the CLI renders it", () => {
  it("ls: the CLI's table on stdout, exit 0, one GET /v1/vms", async () => {
    const { answer, calls } = await oneShot(["ls"]);
    expect(answer).toEqual({ exitCode: 0, output: [[1, LS_TABLE]], command: "ls" });
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual(["GET /v1/vms"]);
  });

  it("an alias runs its command (list -> ls)", async () => {
    const { answer } = await oneShot(["list"]);
    expect(answer).toEqual({ exitCode: 0, output: [[1, LS_TABLE]], command: "ls" });
  });

  it("ls --json: the result as the CLI prints JSON", async () => {
    const { answer } = await oneShot(["ls", "--json"]);
    expect(answer).toEqual({ exitCode: 0, output: [[1, `${JSON.stringify(VMS, null, 2)}\n`]], command: "ls" });
  });

  it("qmp web query-status: POST /v1/vms/web/qmp with the command; the answer as JSON", async () => {
    const { answer, calls } = await oneShot(["qmp", "web", "query-status"]);
    expect(answer).toEqual({ exitCode: 0, output: [[1, '{\n  "status": "running"\n}\n']], command: "qmp" });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ method: "POST", path: "/v1/vms/web/qmp", body: { command: "query-status" } });
  });

  it("an error answer (404 VM_NOT_FOUND): exit 3, the message on stderr; with --json the error on stdout too", async () => {
    const text = await oneShot(["status", "nope"]);
    expect(text.answer).toEqual({ exitCode: 3, output: [[2, "maqet: VM 'nope' not found.\n"]], command: "status" });
    const json = await oneShot(["status", "nope", "--json"]);
    expect(json.answer).toEqual({
      exitCode: 3,
      output: [
        [2, "maqet: VM 'nope' not found.\n"],
        [
          1,
          `${JSON.stringify({ error: { code: "VM_NOT_FOUND", message: "VM 'nope' not found.", details: { vm: "nope" } } }, null, 2)}\n`,
        ],
      ],
      command: "status",
    });
  });

  it("a route that throws (not an error answer) is reported as the CLI reports it, with its exit code", async () => {
    const local = async (): Promise<AgentResponse> => {
      throw new MaqetError("VM_NOT_FOUND", "VM 'gone' not found.");
    };
    const answer = await runOneShot({ argv: ["status", "gone"], version: VERSION }, { version: VERSION, local });
    expect(answer).toMatchObject({ exitCode: 3, command: "status" });
    const output = (answer as Extract<OneShotAnswer, { output: unknown }>).output;
    expect(output.every(([fd]) => fd === 2)).toBe(true);
    expect(output.map(([, t]) => t).join("")).toContain("VM 'gone' not found.");
  });

  it("--agent equal to the client's runs here", async () => {
    const { answer } = await oneShot(["ls", "--agent", "/a.sock"], { agent: "/a.sock" });
    expect(answer).toMatchObject({ exitCode: 0, command: "ls" });
  });

  it("colour as colorEnabled says: the client's terminal, NO_COLOR, FORCE_COLOR, TERM=dumb, --color", async () => {
    const green = "\x1b[32mrunning\x1b[39m";
    const painted = async (argv: string[], extra: Partial<OneShotRequest>) => {
      const { answer } = await oneShot(argv, extra);
      const text = (answer as Extract<OneShotAnswer, { output: unknown }>).output[0]![1];
      expect(plain(text)).toBe(LS_TABLE); // the same table, painted or not
      return text.includes(green);
    };
    expect(await painted(["ls"], {})).toBe(false);
    expect(await painted(["ls"], { tty: { stdout: true } })).toBe(true);
    expect(await painted(["ls"], { tty: { stderr: true } })).toBe(false); // stdout's terminal decides
    expect(await painted(["ls"], { tty: { stdout: true }, env: { NO_COLOR: "1" } })).toBe(false);
    expect(await painted(["ls"], { tty: { stdout: true }, env: { NO_COLOR: "" } })).toBe(true);
    expect(await painted(["ls"], { tty: { stdout: true }, env: { TERM: "dumb" } })).toBe(false);
    expect(await painted(["ls"], { env: { FORCE_COLOR: "1" } })).toBe(true);
    expect(await painted(["ls"], { env: { FORCE_COLOR: "0" } })).toBe(false);
    expect(await painted(["ls", "--color", "always"], {})).toBe(true);
    expect(await painted(["ls", "--color", "never"], { tty: { stdout: true }, env: { FORCE_COLOR: "1" } })).toBe(false);
  });
});

describe("runOneShot: calls that stay with the client answer {fallBack} and run nothing", () => {
  it.each([
    [["ls", "--db", "postgres://x/y"], {}, "store or directory"],
    [["ls", "--data-dir", "/d"], {}, "store or directory"],
    [["--runtime-dir", "/r", "ls"], {}, "store or directory"],
    [["ls", "--config-dir", "/c"], {}, "store or directory"],
    [["ls", "--no-agent"], {}, "--no-agent"],
    [["ls", "--log-file", "/tmp/x.log"], {}, "--log-file"],
    [["ls", "--help"], {}, "help"],
    [["--version"], {}, "help and --version"],
    [["ls", "--agent", "/a.sock"], {}, "--agent differs"],
    [["ls", "--agent", "/a.sock"], { agent: "/b.sock" }, "--agent differs"],
    [["ls"], { agent: "/a.sock" }, "--agent differs"],
    [["ls", "--bogus"], {}, "usage"],
    [["status"], {}, "usage"],
    [["frobnicate"], {}, "usage"],
    [[], {}, "not a command with a route"],
    [["start", "web"], {}, "'start' runs in the client"],
    [["stop", "web"], {}, "'stop' runs in the client"],
    [["events"], {}, "'events' runs in the client"],
    [["console", "web"], {}, "'console' runs in the client"],
    [["snapshot", "create", "web", "s1"], {}, "'snapshot create' runs in the client"],
  ] as Array<[string[], Partial<OneShotRequest>, string]>)("%j %j", async (argv, extra, why) => {
    const { answer, calls } = await oneShot(argv, extra);
    expect(answer).toEqual({ fallBack: expect.stringContaining(why) });
    expect(calls).toEqual([]);
  });

  it("another maqet version: fallBack naming the agent's, nothing run", async () => {
    const agent = fakeAgent();
    const answer = await runOneShot({ argv: ["ls"], version: "0.0.1" }, { version: VERSION, local: agent.local });
    expect(answer).toEqual({ fallBack: `version: the agent is maqet ${VERSION}` });
    expect(agent.calls).toEqual([]);
  });
});
