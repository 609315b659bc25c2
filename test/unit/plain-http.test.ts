/**
 * The agent client's read-whole HTTP/1.1 path over node:net (src/adapters/plain-http.ts), against a
 * real node:http server on a unix socket: what it sends is what node:http parses, what it reads is
 * what node:http writes (content-length and chunked), and a failure says whether it connected.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as createNetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PlainExchangeError, parseAnswer, plainExchange, wholeLength } from "../../src/adapters/plain-http.ts";

describe("plainExchange against node:http", () => {
  let dir: string;
  let socket: string;
  let server: Server;
  const seen: Array<{ method?: string; url?: string; headers: Record<string, unknown>; body: string }> = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "maqet-plain-"));
    socket = join(dir, "s.sock");
    server = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (c: string) => (body += c));
      req.on("end", () => {
        seen.push({ method: req.method, url: req.url, headers: req.headers, body });
        if (req.url === "/chunked") {
          res.writeHead(201, { "content-type": "application/json" });
          res.write('{"a":');
          res.end('"é ünïcode"}');
          return;
        }
        const text = JSON.stringify({ echo: body ? JSON.parse(body) : null, path: req.url });
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
        res.end(text);
      });
    });
    await new Promise<void>((r) => server.listen(socket, r));
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it("sends method, path, headers and a UTF-8 body node:http reads as sent", async () => {
    const payload = JSON.stringify({ name: "wéb", n: 1 });
    const answer = await plainExchange(
      { socket },
      { method: "POST", path: "/v1/vms?x=1", headers: { host: "localhost", "x-maqet-user": "ann" }, payload },
    );
    expect(answer.status).toBe(200);
    expect(answer.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(new TextDecoder().decode(answer.body))).toEqual({
      echo: { name: "wéb", n: 1 },
      path: "/v1/vms?x=1",
    });
    const req = seen.at(-1)!;
    expect(req).toMatchObject({ method: "POST", url: "/v1/vms?x=1", body: payload });
    expect(req.headers).toMatchObject({
      "x-maqet-user": "ann",
      "content-length": String(Buffer.byteLength(payload)),
      connection: "close",
    });
  });

  it("decodes a chunked answer", async () => {
    const answer = await plainExchange({ socket }, { method: "GET", path: "/chunked", headers: { host: "localhost" } });
    expect(answer.status).toBe(201);
    expect(JSON.parse(new TextDecoder().decode(answer.body))).toEqual({ a: "é ünïcode" });
  });

  it("reports a socket nobody listens on as not connected", async () => {
    const error = await plainExchange(
      { socket: join(dir, "nobody.sock") },
      { method: "GET", path: "/", headers: {} },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PlainExchangeError);
    expect(error).toMatchObject({ connected: false, cause: { code: "ENOENT" } });
  });

  it("takes an answer whole at its content-length, without waiting for the connection to close", async () => {
    // A server that answers in two writes and then keeps the connection open: the old reader,
    // which waited for the end of the connection, never resolved here.
    const held: Socket[] = [];
    const raw = join(dir, "raw.sock");
    const server = createNetServer((conn) => {
      held.push(conn);
      conn.once("data", () => {
        conn.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a":');
        setImmediate(() => conn.write('"bcd"}'));
      });
    });
    await new Promise<void>((r) => server.listen(raw, r));
    try {
      const answer = await plainExchange({ socket: raw }, { method: "GET", path: "/", headers: { host: "localhost" } });
      expect(answer.status).toBe(200);
      expect(JSON.parse(new TextDecoder().decode(answer.body))).toEqual({ a: "bcd" });
      // This side closed the connection once it had the answer.
      await new Promise((r) => (held[0]!.readableEnded ? r(undefined) : held[0]!.once("end", r)));
    } finally {
      for (const conn of held) conn.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it("refuses CR or LF in a header value or the path (no header injection)", () => {
    expect(() =>
      plainExchange({ socket }, { method: "GET", path: "/", headers: { "x-maqet-user": "a\r\nx-evil: 1" } }),
    ).toThrow(/invalid character in HTTP header 'x-maqet-user'/);
    expect(() => plainExchange({ socket }, { method: "GET", path: "/ HTTP/1.1\r\nx: y", headers: {} })).toThrow(
      /invalid character in request path/,
    );
  });
});

describe("wholeLength", () => {
  it("is the headers' length plus content-length, -1 for an answer that ends with the connection", () => {
    const head = "HTTP/1.1 200 OK\r\nX-A: b\r\nContent-Length: 2\r\n\r\n";
    expect(wholeLength(Buffer.from(`${head}{`))).toBe(head.length + 2);
    expect(wholeLength(Buffer.from("HTTP/1.1 200 OK\r\ncontent-length:  7 \r\n\r\n"))).toBe(47);
    expect(wholeLength(Buffer.from("HTTP/1.1 200 OK\r\nContent-Len"))).toBeUndefined();
    expect(wholeLength(Buffer.from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n"))).toBe(-1);
    expect(wholeLength(Buffer.from("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc"))).toBe(-1);
  });
});

describe("parseAnswer", () => {
  it("cuts the body at content-length and refuses a short one", () => {
    const ok = parseAnswer(Buffer.from("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nX-A: b\r\n\r\n{}junk"));
    expect(ok).toMatchObject({ status: 404, headers: { "content-length": "2", "x-a": "b" } });
    expect(Buffer.from(ok.body).toString()).toBe("{}");
    expect(() => parseAnswer(Buffer.from("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{}"))).toThrow(
      /ended after 2 of 10 bytes/,
    );
  });

  it("refuses an answer without headers' end, a chunked one cut short, and one that is not HTTP", () => {
    expect(() => parseAnswer(Buffer.from("HTTP/1.1 200 OK\r\ncontent-"))).toThrow(/before its headers/);
    expect(() => parseAnswer(Buffer.from("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab"))).toThrow(
      /chunked answer ended early/,
    );
    expect(() => parseAnswer(Buffer.from("SSH-2.0-OpenSSH\r\n\r\n"))).toThrow(/not an HTTP answer/);
  });
});
