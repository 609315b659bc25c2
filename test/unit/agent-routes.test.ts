/**
 * The agent's routes are derived from the command registry: one per command, none twice, each
 * documented in docs/agent.md; a request built by a client maps back to the input the CLI parser
 * builds (round trip); bad fields are refused by name.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileRoutes } from "../../src/agent/route-table.ts";
import { COMMAND_ROUTES, inputFromRequest, requestFor, routeOf } from "../../src/api/command-routes.ts";
import { COMMANDS } from "../../src/api/commands.ts";
import { parseArgs } from "../../src/cli/parse-args.ts";

function roundTrip(argv: string[]) {
  const parsed = parseArgs(argv);
  const route = routeOf(parsed.command!.name)!;
  const request = requestFor(route, parsed.input);
  const url = new URL(request.path, "http://maqet");
  const match = compileRoutes(COMMAND_ROUTES).match(request.method, url.pathname);
  if (match.kind !== "found") throw new Error(`no route for ${request.method} ${url.pathname}`);
  expect(match.route.command).toBe(route.command);
  const body = request.body === undefined ? undefined : JSON.parse(JSON.stringify(request.body));
  return { request, input: inputFromRequest(match.route, match.params, url.searchParams, body), parsed };
}

describe("agent routes from the command registry", () => {
  it("gives every registry command exactly one route, and no two commands the same", () => {
    expect(COMMAND_ROUTES.map((r) => r.command)).toEqual(COMMANDS.map((c) => c.name));
    const keys = COMMAND_ROUTES.map((r) => `${r.method} ${r.path}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("lists every route in docs/agent.md", () => {
    const doc = readFileSync(new URL("../../docs/agent.md", import.meta.url), "utf8");
    for (const r of COMMAND_ROUTES) expect(doc, `${r.method} ${r.path}`).toContain(`\`${r.method} ${r.path}\``);
    expect(doc).toContain("`GET /v1/version`");
    expect(doc).toContain("`GET /v1/events`");
  });

  it("maps the CLI's input to a request and back unchanged", () => {
    const cases: string[][] = [
      ["ls"],
      ["status", "web"],
      ["start", "web", "--timeout", "60", "--wait-for", "serial:login:"],
      ["stop", "web", "--force"],
      ["rm", "web", "--force"],
      ["qmp", "web", "pmemsave", "val:=0", "size:=4096", "filename=/tmp/m"],
      ["qmp", "web", "human-monitor-command", "--args", '{"command-line":"info"}', "--allow-dangerous"],
      ["qmp", "keys", "web", "ctrl", "alt", "delete", "--hold-time", "50"],
      ["history", "web", "--version", "3"],
      ["audit", "--vm", "web", "--since", "2h", "--format", "jsonl"],
      ["snapshot", "list", "web", "hdd"],
      ["snapshot", "create", "web", "hdd", "s1", "--overwrite"],
      ["disk", "resize", "/tmp/a.qcow2", "+1G", "--shrink"],
      ["doctor", "--skip-kvm"],
      ["projections", "rebuild", "vms"],
    ];
    for (const argv of cases) {
      const { input, parsed } = roundTrip(argv);
      expect(input, argv.join(" ")).toEqual(parsed.input);
    }
  });

  it("reads one word after the VM as the snapshot's name, as the CLI does", () => {
    const { request, input } = roundTrip(["snapshot", "load", "web", "before-upgrade"]);
    expect(request.path).toBe("/v1/vms/web/snapshots/before-upgrade/load");
    expect(input).toEqual({ vm: "web", name: "before-upgrade" });
    expect(roundTrip(["snapshot", "delete", "web", "hdd", "s1"]).request.path).toBe(
      "/v1/vms/web/snapshots/s1?drive=hdd",
    );
  });

  it("encodes path parameters and decodes them back", () => {
    const { request, input } = roundTrip(["status", "we b/x"]);
    expect(request.path).toBe("/v1/vms/we%20b%2Fx");
    expect(input.vm).toBe("we b/x");
  });

  it("refuses unknown fields and values of the wrong type, naming them", () => {
    const stop = routeOf("stop")!;
    expect(() => inputFromRequest(stop, { vm: "web" }, new URLSearchParams(), { forse: true })).toThrow(
      /unknown field 'forse'/,
    );
    expect(() => inputFromRequest(stop, { vm: "web" }, new URLSearchParams(), { force: "yes" })).toThrow(
      /'force' must be true or false/,
    );
    expect(() => inputFromRequest(stop, { vm: "web" }, new URLSearchParams(), { timeout: -1 })).toThrow(
      /non-negative number/,
    );
    const history = routeOf("history")!;
    expect(() => inputFromRequest(history, { vm: "w" }, new URLSearchParams("version=x"), undefined)).toThrow(
      /'version'/,
    );
    expect(() => inputFromRequest(routeOf("qmp")!, { vm: "w" }, new URLSearchParams(), {})).toThrow(
      /missing 'command'/,
    );
  });

  it("takes QMP arguments as an object in the API (the CLI's --args is JSON text)", () => {
    const input = inputFromRequest(routeOf("qmp")!, { vm: "w" }, new URLSearchParams(), {
      command: "screendump",
      args: { filename: "/tmp/x.ppm" },
    });
    expect(input.args).toBe('{"filename":"/tmp/x.ppm"}');
  });

  it("says which methods a known path takes", () => {
    const table = compileRoutes(COMMAND_ROUTES);
    const match = table.match("PUT", "/v1/vms/web");
    expect(match.kind).toBe("method");
    expect(match.kind === "method" && [...match.allowed].sort()).toEqual(["DELETE", "GET"]);
    expect(table.match("GET", "/v1/nothing")).toEqual({ kind: "none" });
  });
});
