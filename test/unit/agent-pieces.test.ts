/**
 * Small parts of the agent and its clients: the bearer-token check, the SSE parser, HTTP status
 * of error codes, caller headers, the store id that tells agents apart.
 */
import { describe, expect, it } from "vitest";
import { parseAgentArgs } from "../../src/agent/agent-args.ts";
import { tokenMatches } from "../../src/agent/agent-token.ts";
import { errorResponse, httpStatusOf } from "../../src/agent/http-errors.ts";
import { isAgentCommand } from "../../src/cli/agent-entry.ts";
import { createSseParser, type SseFrame } from "../../src/client/sse-parser.ts";
import { storeIdOf } from "../../src/client/store-id.ts";
import { MaqetError } from "../../src/errors/maqet-error.ts";

describe("agent pieces", () => {
  it("accepts exactly the bearer token", () => {
    const token = "s3cret-token-0123456789";
    expect(tokenMatches(`Bearer ${token}`, token)).toBe(true);
    expect(tokenMatches(`bearer   ${token}`, token)).toBe(true);
    expect(tokenMatches(`Bearer ${token}x`, token)).toBe(false);
    expect(tokenMatches(`Bearer ${token.slice(1)}`, token)).toBe(false);
    expect(tokenMatches(token, token)).toBe(false);
    expect(tokenMatches(undefined, token)).toBe(false);
    expect(tokenMatches("Bearer ", "")).toBe(false);
    expect(tokenMatches(`Bearer ${token}`, undefined)).toBe(false);
  });

  it("parses server-sent events split anywhere", () => {
    const frames: SseFrame[] = [];
    const parser = createSseParser((f) => frames.push(f));
    const text = ': hello\n\nid: 7\ndata: {"a":\ndata: 1}\n\nevent: caught-up\ndata: {}\n\n';
    for (const ch of text) parser.push(ch);
    expect(frames).toEqual([
      { id: "7", event: "message", data: '{"a":\n1}' },
      { event: "caught-up", data: "{}" },
    ]);
  });

  it("gives each error code a fitting HTTP status and the CLI's exit code", () => {
    expect(httpStatusOf("VM_NOT_FOUND", 3)).toBe(404);
    expect(httpStatusOf("INVALID_ARGUMENT", 3)).toBe(400);
    expect(httpStatusOf("QMP_REFUSED", 4)).toBe(403);
    expect(httpStatusOf("UNAUTHORIZED", 4)).toBe(401);
    expect(httpStatusOf("TIMEOUT", 2)).toBe(504);
    expect(httpStatusOf("VM_BUSY", 1)).toBe(409);
    expect(httpStatusOf("START_FAILED", 1)).toBe(500);
    const { status, body } = errorResponse(
      new MaqetError("VM_NOT_FOUND", "VM 'x' not found.", { details: { name: "x" } }),
    );
    expect(status).toBe(404);
    expect(body).toEqual({
      error: { code: "VM_NOT_FOUND", message: "VM 'x' not found.", exitCode: 3, details: { name: "x" } },
    });
    expect(errorResponse(new TypeError("boom"))).toMatchObject({
      status: 500,
      body: { error: { code: "INTERNAL", exitCode: 1 } },
    });
  });

  it("names a store without its credentials", () => {
    expect(storeIdOf({ databaseUrl: "postgres://u:secret@db:5433/maqet" })).toBe("postgresql://db:5433/maqet");
    expect(storeIdOf({ dataDir: "/srv/m" })).toBe("embedded:/srv/m");
  });

  it("finds the agent command after global options, and parses its flags", () => {
    expect(isAgentCommand(["agent"])).toBe(true);
    expect(isAgentCommand(["--data-dir", "agent", "ls"])).toBe(false);
    expect(isAgentCommand(["--db", "postgres://x", "agent", "--log-format", "json"])).toBe(true);
    expect(parseAgentArgs(["agent", "--listen", "127.0.0.1:7420", "--log-format=json"])).toMatchObject({
      listen: { host: "127.0.0.1", port: 7420 },
      logFormat: "json",
    });
    expect(() => parseAgentArgs(["agent", "--listen", "7420"])).toThrow(/HOST:PORT/);
    expect(() => parseAgentArgs(["agent", "--bogus"])).toThrow(/unknown option '--bogus'/);
  });
});
