/**
 * The executable's quick path (src/cli/quick-call.ts, inlined in dist/src/bin/maqet.js) against
 * fake agents: node:http servers on unix sockets in a temp dir that answer `POST /v1/cli` as a
 * test needs (an answer, 404 as an agent older than the route, `{fallBack}`, a connection broken
 * after the request). The real built executable runs in a child process; what it prints, its exit
 * code and the requests the fake saw are compared. Also quickCall itself, in this process, for
 * the outcomes that print nothing (undefined, "broken"), and the table the build bakes in.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMMAND_ROUTES } from "../../src/api/command-routes.ts";
import { oneShotTable } from "../../src/cli/one-shot-commands.ts";
import { GLOBAL_OPTIONS } from "../../src/cli/parse-args.ts";
import { type QuickTable, quickCall } from "../../src/cli/quick-call.ts";
import { cliBin, projectRoot } from "../support/build-dist.ts";
import { waitUntil } from "../support/poll.ts";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

interface FakeAgent {
  socket: string;
  seen: Seen[];
  close(): Promise<void>;
}

type Answer = (seen: Seen, res: ServerResponse) => void;

let dir: string;
let version: string;
const servers: FakeAgent[] = [];

/** A node:http server on `dir/NAME.sock`; each request read whole, recorded, then answered by `answer`. */
async function fakeAgent(name: string, answer: Answer): Promise<FakeAgent> {
  const socket = join(dir, `${name}.sock`);
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const one = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      seen.push(one);
      answer(one, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  const fake = {
    socket,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(fake);
  return fake;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** An agent older than /v1/cli: 404 ROUTE_NOT_FOUND for it, and an empty list for GET /v1/vms. */
const olderAgent: Answer = (seen, res) => {
  if (seen.method === "GET" && seen.url === "/v1/vms") return json(res, 200, []);
  json(res, 404, {
    error: { code: "ROUTE_NOT_FOUND", message: `No route for ${seen.method} ${seen.url}.`, exitCode: 3 },
  });
};

interface Run {
  code: number | null;
  pid: number;
  stdout: string;
  stderr: string;
}

/** The built executable with `args`; `merged`: stderr into stdout's pipe (their order kept). */
function runBin(args: string[], env: Record<string, string> = {}, merged = false): Promise<Run> {
  const fullEnv = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: dir,
    XDG_DATA_HOME: join(dir, "data"),
    XDG_RUNTIME_DIR: join(dir, "run"),
    USER: "quick-tester",
    ...env,
  };
  const child = merged
    ? spawn("sh", ["-c", 'exec "$0" "$@" 2>&1', process.execPath, cliBin, ...args], { env: fullEnv })
    : spawn(process.execPath, [cliBin, ...args], { env: fullEnv });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, pid: child.pid!, stdout, stderr }));
  });
}

const TABLE: QuickTable = {
  commands: oneShotTable(COMMAND_ROUTES),
  globalValues: GLOBAL_OPTIONS.filter((o) => o.type !== "boolean").flatMap((o) => [o.name, ...(o.aliases ?? [])]),
  version: "",
};

describe("the maqet executable's quick path against fake agents", { timeout: 60_000 }, () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "maqet-quick-"));
    version = JSON.parse(await readFile(join(projectRoot, "package.json"), "utf8")).version;
    TABLE.version = version;
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("the build bakes the registry's table and package.json's version into the executable", async () => {
    const bin = await readFile(cliBin, "utf8");
    const baked = /module\.exports\.table=(\{.*?\});/s.exec(bin);
    expect(baked, "dist/src/bin/maqet.js holds quick.cjs's table").not.toBeNull();
    expect(JSON.parse(baked![1]!)).toEqual(TABLE);
  });

  it("an answer: its chunks printed in order to their fds, its exit code; one POST /v1/cli saying who asks", async () => {
    const output: Array<[1 | 2, string]> = [
      [1, "one\n"],
      [2, "two\n"],
      [1, "thrée ✓\n"],
      [2, "four"],
    ];
    const fake = await fakeAgent("answers", (_seen, res) => json(res, 200, { exitCode: 5, output, command: "ls" }));
    const apart = await runBin(["ls", "--agent", fake.socket, "--json"], { NO_COLOR: "1", TERM: "xterm", SECRET: "x" });
    expect(apart).toMatchObject({ code: 5, stdout: "one\nthrée ✓\n", stderr: "two\nfour" });
    expect(fake.seen).toHaveLength(1);
    const [call] = fake.seen;
    expect(call).toMatchObject({ method: "POST", url: "/v1/cli" });
    expect(call!.headers).toMatchObject({
      "content-type": "application/json",
      "maqet-pid": String(apart.pid),
      "maqet-source": "cli",
      "maqet-user": "quick-tester",
    });
    expect(JSON.parse(call!.body)).toEqual({
      argv: ["ls", "--agent", fake.socket, "--json"],
      version,
      agent: fake.socket,
      env: { NO_COLOR: "1", TERM: "xterm" },
      tty: { stdout: false, stderr: false },
    });
    // One pipe for both: the order of the chunks is the order printed.
    const merged = await runBin(["ls", "--agent", fake.socket], {}, true);
    expect(merged).toMatchObject({ code: 5, stdout: "one\ntwo\nthrée ✓\nfour" });
  });

  it("a large answer (4 MiB, more than a pipe holds) arrives whole, byte for byte", async () => {
    const big = `${"0123456789abcdef".repeat(256 * 1024 - 1)}0123456789abcde\n`;
    const fake = await fakeAgent("big", (_seen, res) =>
      json(res, 200, {
        exitCode: 0,
        output: [
          [1, big],
          [2, "done\n"],
        ],
        command: "ls",
      }),
    );
    const run = await runBin(["ls", "--agent", fake.socket]);
    expect(run.code).toBe(0);
    expect(run.stdout.length).toBe(big.length);
    expect(run.stdout === big).toBe(true);
    expect(run.stderr).toBe("done\n");
  });

  it("an agent older than the route (404): the usual path, which asks GET /v1/vms", async () => {
    const fake = await fakeAgent("older", olderAgent);
    const run = await runBin(["ls", "--agent", fake.socket]);
    expect(run).toMatchObject({ code: 0, stdout: "No VMs. Define one with `maqet add config.yaml`.\n", stderr: "" });
    expect(fake.seen.map((s) => `${s.method} ${s.url}`)).toEqual(["POST /v1/cli", "GET /v1/vms"]);
  });

  it("a {fallBack} answer: the usual path", async () => {
    const fake = await fakeAgent("fallback", (seen, res) =>
      seen.url === "/v1/cli"
        ? json(res, 200, { fallBack: "version: the agent is maqet 0.0.0" })
        : olderAgent(seen, res),
    );
    const run = await runBin(["ls", "--agent", fake.socket, "--json"]);
    expect(run).toMatchObject({ code: 0, stdout: "[]\n", stderr: "" });
    expect(fake.seen.map((s) => `${s.method} ${s.url}`)).toEqual(["POST /v1/cli", "GET /v1/vms"]);
  });

  it("a command that is not one-shot never asks /v1/cli", async () => {
    const fake = await fakeAgent("not-quick", (_seen, res) =>
      json(res, 404, { error: { code: "VM_NOT_FOUND", message: "VM 'web' not found.", exitCode: 3 } }),
    );
    const run = await runBin(["stop", "web", "--agent", fake.socket, "--force"]);
    expect(run.stderr).toContain("VM 'web' not found.");
    expect(run.code).toBe(3);
    expect(fake.seen.map((s) => `${s.method} ${s.url}`)).toEqual(["POST /v1/vms/web/stop"]);
  });

  it("the connection broken after the request: exit 1, 'may have run', and the request is not sent again", async () => {
    const fake = await fakeAgent("broken", (_seen, res) => res.socket?.destroy());
    const run = await runBin(["qmp", "web", "query-status", "--agent", fake.socket]);
    expect(run.stderr).toContain(`The connection to the maqet agent at ${fake.socket} broke before its answer`);
    expect(run.stderr).toContain("the operation may have run");
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(fake.seen.map((s) => `${s.method} ${s.url}`)).toEqual(["POST /v1/cli"]);

    const asJson = await runBin(["qmp", "web", "query-status", "--agent", fake.socket, "--json"]);
    expect(asJson.code).toBe(1);
    expect(JSON.parse(asJson.stdout)).toMatchObject({ error: { code: "AGENT_UNAVAILABLE" } });
    expect(fake.seen.map((s) => `${s.method} ${s.url}`)).toEqual(["POST /v1/cli", "POST /v1/cli"]);
  });

  it("a 200 answer it cannot read: the call may have run, so it is reported as broken, not sent again", async () => {
    const fake = await fakeAgent("unreadable", (seen, res) => {
      if (seen.url !== "/v1/cli") return json(res, 200, { name: "web", state: "paused" });
      res.writeHead(200, { "content-type": "application/json", "content-length": 9 });
      res.end("<html>oh!");
    });
    const run = await runBin(["pause", "web", "--agent", fake.socket]);
    expect(fake.seen.map((s) => `${s.method} ${s.url}`)).toEqual(["POST /v1/cli"]);
    expect(run.stderr).toContain("the operation may have run");
    expect(run.code).toBe(1);
  });
});

describe("quickCall in this process: the outcomes that print nothing", { timeout: 60_000 }, () => {
  let local: string;
  beforeAll(async () => {
    local = await mkdtemp(join(tmpdir(), "maqet-quick-call-"));
    dir = local;
    version = JSON.parse(await readFile(join(projectRoot, "package.json"), "utf8")).version;
    TABLE.version = version;
  });
  afterAll(async () => {
    for (const s of servers.splice(0)) await s.close();
    await rm(local, { recursive: true, force: true });
  });

  const call = (argv: string[], socket: string) => quickCall(argv, { MAQET_AGENT: socket }, TABLE);

  it("a number: the answer's exit code (no output to print)", async () => {
    const fake = await fakeAgent("code", (_s, res) => json(res, 200, { exitCode: 7, output: [], command: "ls" }));
    expect(await call(["ls"], fake.socket)).toBe(7);
    expect(fake.seen).toHaveLength(1);
  });

  it("undefined: no socket file (ENOENT), nothing listening (ECONNREFUSED), 404, {fallBack}, a call that stays", async () => {
    expect(await call(["ls"], join(local, "absent.sock"))).toBeUndefined();

    // A dead agent's socket file: the listener killed with SIGKILL leaves it behind.
    const stale = join(local, "stale.sock");
    const holder = spawn(process.execPath, [
      "-e",
      `require("node:net").createServer().listen(${JSON.stringify(stale)}, () => console.log("up"))`,
    ]);
    let said = "";
    holder.stdout.setEncoding("utf8").on("data", (d: string) => (said += d));
    await waitUntil(
      "the holder to listen",
      () => said,
      (s) => s.includes("up"),
      { timeoutMs: 20_000 },
    );
    const gone = new Promise((resolve) => holder.once("exit", resolve));
    holder.kill("SIGKILL");
    await gone;
    expect(await call(["ls"], stale)).toBeUndefined();

    const notASocket = join(local, "file.sock");
    await writeFile(notASocket, "");
    expect(await call(["ls"], notASocket)).toBeUndefined();

    const older = await fakeAgent("older-here", olderAgent);
    expect(await call(["ls"], older.socket)).toBeUndefined();
    const fallBack = await fakeAgent("fallback-here", (_s, res) => json(res, 200, { fallBack: "no" }));
    expect(await call(["status", "web"], fallBack.socket)).toBeUndefined();
    expect(await call(["start", "web"], fallBack.socket)).toBeUndefined();
    expect(await call(["ls", "--no-agent"], fallBack.socket)).toBeUndefined();
    expect(older.seen).toHaveLength(1);
    expect(fallBack.seen).toHaveLength(1); // start and --no-agent never connected
  });

  it('"broken": the connection closed after the request was read, sent once', async () => {
    const fake = await fakeAgent("broken-here", (_s, res) => res.socket?.destroy());
    expect(await call(["ls"], fake.socket)).toBe("broken");
    expect(fake.seen).toHaveLength(1);
  });

  it('"broken": a 200 whose body is not an answer (not JSON, or neither output nor fallBack)', async () => {
    const notJson = await fakeAgent("not-json", (_s, res) => {
      res.writeHead(200, { "content-length": 3 });
      res.end("{{{");
    });
    expect(await call(["ls"], notJson.socket)).toBe("broken");
    const shapeless = await fakeAgent("shapeless", (_s, res) => json(res, 200, { exitCode: 0 }));
    expect(await call(["ls"], shapeless.socket)).toBe("broken");
    expect([notJson.seen.length, shapeless.seen.length]).toEqual([1, 1]);
  });

  it('"broken": half an answer, then the connection closed', async () => {
    const fake = await fakeAgent("half", (_s, res) => {
      res.socket?.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{"exitCode":');
      res.socket?.destroy();
    });
    expect(await call(["ls"], fake.socket)).toBe("broken");
    expect(fake.seen).toHaveLength(1);
  });
});
