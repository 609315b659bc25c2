/**
 * The web console's pieces without a browser: sessions (one-time login token, cookie
 * attributes, expiry, logout), the Origin check, and the assets' rules (no HTML parsing of
 * strings, no inline script, nothing from another origin). The browser test is
 * test/e2e/web-console.qemu.test.ts.
 */
import { readdirSync, readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defaultAssetsDir } from "../../src/adapters/web-assets.ts";
import { SECURITY_HEADERS, sameOrigin } from "../../src/agent/web-console.ts";
import { cookieValue, createWebSessions, MAX_SESSIONS, SESSION_COOKIE } from "../../src/agent/web-session.ts";

const secretOf = (setCookie: string) => /^maqet_session=([^;]*)/.exec(setCookie)![1]!;

describe("web sessions", () => {
  it("a login token works once and gives an HttpOnly, SameSite=Strict session cookie", () => {
    const sessions = createWebSessions();
    const token = sessions.mintLoginToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const cookie = sessions.redeemLoginToken(token)!;
    expect(cookie).toMatch(/^maqet_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/);
    expect(sessions.redeemLoginToken(token)).toBeUndefined();
    expect(sessions.valid(`other=1; ${SESSION_COOKIE}=${secretOf(cookie)}`)).toBe(true);
    expect(sessions.size).toBe(1);
  });

  it("refuses unknown, malformed and missing tokens and cookies", () => {
    const sessions = createWebSessions();
    const token = sessions.mintLoginToken();
    for (const bad of [
      undefined,
      null,
      "",
      "short",
      `${token}x`,
      token.slice(1),
      "<script>alert(1)</script>xxxxxxxx",
    ]) {
      expect(sessions.redeemLoginToken(bad)).toBeUndefined();
    }
    expect(sessions.redeemLoginToken(token)).toBeDefined();
    expect(sessions.valid(undefined)).toBe(false);
    expect(sessions.valid("maqet_session=")).toBe(false);
    expect(sessions.valid(`maqet_session=${"A".repeat(43)}`)).toBe(false);
  });

  it("a session expires after its idle time and is refreshed by use; a login token expires unused", () => {
    let now = 1_000_000;
    const sessions = createWebSessions({ idleMs: 1000, loginTokenMs: 5000, now: () => now });
    const secret = secretOf(sessions.open());
    const header = `maqet_session=${secret}`;
    now += 900;
    expect(sessions.valid(header)).toBe(true); // refreshed: 1000 ms from now
    now += 900;
    expect(sessions.valid(header)).toBe(true);
    now += 1001;
    expect(sessions.valid(header)).toBe(false);
    const token = sessions.mintLoginToken();
    now += 5001;
    expect(sessions.redeemLoginToken(token)).toBeUndefined();
  });

  it("logout ends the session and clears the cookie", () => {
    const sessions = createWebSessions();
    const header = `maqet_session=${secretOf(sessions.open())}`;
    expect(sessions.close(header)).toBe("maqet_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    expect(sessions.valid(header)).toBe(false);
  });

  it("keeps at most MAX_SESSIONS: a new one past it ends the oldest", () => {
    const sessions = createWebSessions();
    const first = `maqet_session=${secretOf(sessions.open())}`;
    let last = "";
    for (let i = 0; i < MAX_SESSIONS; i++) last = `maqet_session=${secretOf(sessions.open())}`;
    expect(sessions.size).toBe(MAX_SESSIONS);
    expect(sessions.valid(first)).toBe(false);
    expect(sessions.valid(last)).toBe(true);
  });

  it("reads only a well-formed session cookie", () => {
    expect(cookieValue("a=b; maqet_session=abcdefghijklmnop; c=d")).toBe("abcdefghijklmnop");
    expect(cookieValue("maqet_session=abc")).toBeUndefined();
    expect(cookieValue("maqet_sessionx=abcdefghijklmnop")).toBeUndefined();
    expect(cookieValue("maqet_session=abcdefghijklmno;p")).toBeUndefined();
  });
});

describe("Origin check", () => {
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;
  it("accepts the agent's own origin only", () => {
    expect(sameOrigin(req({ host: "127.0.0.1:8080", origin: "http://127.0.0.1:8080" }))).toBe(true);
    expect(sameOrigin(req({ host: "127.0.0.1:8080", origin: "http://evil.example" }))).toBe(false);
    expect(sameOrigin(req({ host: "127.0.0.1:8080", origin: "http://127.0.0.1:8081" }))).toBe(false);
    expect(sameOrigin(req({ host: "127.0.0.1:8080", origin: "null" }))).toBe(false);
    expect(sameOrigin(req({ host: "127.0.0.1:8080" }))).toBe(false);
  });
});

describe("the console's assets", () => {
  const dir = defaultAssetsDir();
  const files: string[] = [];
  const walk = (sub: string) => {
    for (const e of readdirSync(join(dir, sub), { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(sub, e.name));
      else files.push(join(sub, e.name));
    }
  };
  walk("");

  it("never parse a string as HTML and never evaluate one", () => {
    const scripts = files.filter((f) => f.endsWith(".js"));
    expect(scripts.length).toBeGreaterThan(5);
    for (const f of scripts) {
      const text = readFileSync(join(dir, f), "utf8");
      expect(text, f).not.toMatch(
        /\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\(|new Function|createContextualFragment|DOMParser/,
      );
    }
  });

  it("have no inline script or style and load nothing from another origin", () => {
    for (const f of files.filter((f) => /\.(html|css|js)$/.test(f))) {
      const text = readFileSync(join(dir, f), "utf8");
      expect(text, f).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
      if (f.endsWith(".html")) {
        expect(text, f).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
        expect(text, f).not.toMatch(/\son[a-z]+=|style=/);
      }
    }
    expect(SECURITY_HEADERS["content-security-policy"]).toMatch(/script-src 'self';/);
    expect(SECURITY_HEADERS["content-security-policy"]).not.toContain("unsafe");
  });
});
