/**
 * The web console on the agent's TCP listener: who may call (bearer token, or a session cookie
 * from the login URL), the CSRF check for cookie-carried writes (`Origin` must be the agent's
 * own), and everything outside `/v1/`: the login page and its one-time URL, logout, the static
 * assets shipped in the package's `web/` folder, and the console's screenshot (a `screendump`
 * through the caller's view, returned as PNG). Every answer carries a Content-Security-Policy
 * that allows no inline script and no other origin, so guest text can never run as code.
 *
 * @example
 * ```ts
 * const web = createWebConsole({ token, sessions: createWebSessions() });
 * const how = web.authOf(req);             // "bearer" | "session" | "none"
 * if (!url.pathname.startsWith("/v1/")) await web.serve(req, res, url, how, view);
 * ```
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { readWrittenFile } from "../adapters/scratch-file.ts";
import { defaultAssetsDir, loadAssets } from "../adapters/web-assets.ts";
import type { Maqet } from "../api/maqet.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import { tokenMatches } from "./agent-token.ts";
import { sendError } from "./http-reply.ts";
import type { WebSessions } from "./web-session.ts";

export type AuthKind = "bearer" | "session" | "none";

/** Headers on every TCP answer: no inline script, nothing from another origin, no framing. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  // same-origin, not no-referrer: with no-referrer a form POST carries `Origin: null`, and the check refuses it.
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
};

/** Assets a browser may fetch before logging in (the login page needs its style). */
const PUBLIC_ASSETS = new Set(["/ui/style.css", "/ui/favicon.svg"]);

export interface WebConsoleOptions {
  /** The agent's bearer token (also accepted on the login page). */
  token: string;
  sessions: WebSessions;
  /** The folder of static assets (default: the package's `web/`). */
  assetsDir?: string;
}

export interface WebConsole {
  readonly sessions: WebSessions;
  /** How a request authenticates: the bearer header first, then the session cookie. */
  authOf(req: IncomingMessage): AuthKind;
  /** Answers a path outside `/v1/` (pages, assets, login, logout, screenshot). */
  serve(req: IncomingMessage, res: ServerResponse, url: URL, how: AuthKind, view: Maqet): Promise<string | undefined>;
}

export function createWebConsole(options: WebConsoleOptions): WebConsole {
  const assets = loadAssets(options.assetsDir ?? defaultAssetsDir());
  const { sessions } = options;

  const page = (res: ServerResponse, status: number, name: string, extra: Record<string, string> = {}): undefined => {
    const asset = assets.get(`/ui/${name}`);
    if (!asset) throw new MaqetError("INTERNAL", `The web console's ${name} is missing from the package.`);
    res.writeHead(status, { ...SECURITY_HEADERS, "content-type": asset.type, "cache-control": "no-store", ...extra });
    res.end(asset.body);
  };
  const loginPage = (res: ServerResponse, status: number, message: string): string => {
    const asset = assets.get("/ui/login.html");
    if (!asset) throw new MaqetError("INTERNAL", "The web console's login.html is missing from the package.");
    // The message is one of this file's constant sentences, never request text.
    const body = asset.body.toString("utf8").replace("<!--MESSAGE-->", message);
    res.writeHead(status, { ...SECURITY_HEADERS, "content-type": asset.type, "cache-control": "no-store" });
    res.end(body);
    return "UNAUTHORIZED";
  };
  const redirect = (res: ServerResponse, location: string, cookie?: string): undefined => {
    res.writeHead(303, {
      ...SECURITY_HEADERS,
      location,
      "cache-control": "no-store",
      ...(cookie ? { "set-cookie": cookie } : {}),
    });
    res.end();
  };

  return {
    sessions,
    authOf: (req) => {
      if (req.headers.authorization !== undefined) {
        return tokenMatches(req.headers.authorization, options.token) ? "bearer" : "none";
      }
      return sessions.valid(req.headers.cookie) ? "session" : "none";
    },
    serve: async (req, res, url, how, view) => {
      const method = req.method ?? "GET";
      const path = url.pathname;
      try {
        if (path === "/login" && method === "GET") {
          const token = url.searchParams.get("token");
          if (token === null) {
            if (how === "session") return redirect(res, "/");
            return loginPage(res, 401, "Open the login URL the agent printed, or give the agent's token.");
          }
          const cookie = sessions.redeemLoginToken(token);
          if (!cookie) {
            return loginPage(
              res,
              401,
              "That login link was used already or has expired. Give the agent's token instead.",
            );
          }
          return redirect(res, "/", cookie);
        }
        if (path === "/login" && method === "POST") {
          if (!sameOrigin(req)) throw originRefused();
          const form = new URLSearchParams(await readSmallBody(req));
          const given = form.get("token") ?? "";
          if (!tokenMatches(`Bearer ${given}`, options.token)) {
            return loginPage(
              res,
              401,
              "That is not the agent's token. It is in the token file the agent named at start.",
            );
          }
          return redirect(res, "/", sessions.open());
        }
        if (path === "/logout" && method === "POST") {
          if (!sameOrigin(req)) throw originRefused();
          return redirect(res, "/login", sessions.close(req.headers.cookie));
        }
        const asset = assets.get(path);
        if (asset && PUBLIC_ASSETS.has(path) && (method === "GET" || method === "HEAD")) {
          res.writeHead(200, { ...SECURITY_HEADERS, "content-type": asset.type, "cache-control": "no-cache" });
          res.end(method === "HEAD" ? undefined : asset.body);
          return undefined;
        }
        if (how === "none") {
          if (path.startsWith("/ui/api/")) throw unauthorized();
          return loginPage(
            res,
            401,
            "Log in to see this page: open the login URL the agent printed, or give its token.",
          );
        }
        if (path === "/" && (method === "GET" || method === "HEAD")) return page(res, 200, "index.html");
        if (asset && (method === "GET" || method === "HEAD")) {
          res.writeHead(200, { ...SECURITY_HEADERS, "content-type": asset.type, "cache-control": "no-cache" });
          res.end(method === "HEAD" ? undefined : asset.body);
          return undefined;
        }
        const shot = /^\/ui\/api\/vms\/([^/]+)\/screenshot$/.exec(path);
        if (shot && method === "POST") {
          if (how === "session" && !sameOrigin(req)) throw originRefused();
          const png = await screenshot(view, decodeURIComponent(shot[1]!));
          res.writeHead(200, {
            ...SECURITY_HEADERS,
            "content-type": "image/png",
            "content-length": String(png.length),
            "cache-control": "no-store",
          });
          res.end(png);
          return undefined;
        }
        throw new MaqetError(
          "ROUTE_NOT_FOUND",
          `No page ${method} ${path}. The console is at / ; the API's routes are listed in docs/agent.md.`,
        );
      } catch (error) {
        return sendError(res, error, SECURITY_HEADERS);
      }
    },
  };
}

/**
 * True when a request comes from the agent's own pages: its `Origin` is `http://<Host>`. A
 * browser sends `Origin` on every cross-site request and on same-origin POST/DELETE; a missing
 * one on a cookie-carried write is refused too.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  const host = req.headers.host;
  if (typeof origin !== "string" || typeof host !== "string" || origin === "null") return false;
  return origin === `http://${host}` || origin === `https://${host}`;
}

/** Methods that change nothing: no `Origin` check for them. */
export function isSafeMethod(method: string | undefined): boolean {
  return method === "GET" || method === "HEAD" || method === "OPTIONS";
}

export function originRefused(): MaqetError {
  return new MaqetError(
    "ORIGIN_REFUSED",
    "Refused: a state-changing request with the console's session cookie must come from the console's own pages (Origin mismatch).",
  );
}

export function unauthorized(): MaqetError {
  return new MaqetError(
    "UNAUTHORIZED",
    "Unauthorized: log in to the web console (the login URL the agent printed), or send `Authorization: Bearer <token>`.",
  );
}

/** A screendump of the VM's display as PNG bytes: through the caller's view (policy, audit). */
function screenshot(view: Maqet, vm: string): Promise<Buffer> {
  return readWrittenFile("screen.png", (file) => view.screendump(vm, file, { format: "png" }).then(() => undefined));
}

function readSmallBody(req: IncomingMessage, limit = 4096): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      text += chunk;
      if (text.length > limit) {
        reject(new MaqetError("REQUEST_TOO_LARGE", `A login form is a few bytes; this one is over ${limit}.`));
        req.destroy();
      }
    });
    req.on("end", () => resolve(text));
    req.on("error", reject);
  });
}
