/**
 * Browser sessions of the web console (the Jupyter pattern): the agent mints a one-time login
 * token and prints `http://HOST:PORT/login?token=…`; the first visit with it consumes it and gets a
 * session cookie (`HttpOnly; SameSite=Strict; Path=/`). Later visits log in again with the
 * agent's bearer token (the token file) on the login page. Secrets are 32 random bytes,
 * base64url; only their SHA-256 is kept, and every comparison is constant-time over digests, so
 * neither a secret's length nor a matching prefix shows in the timing.
 *
 * @example
 * ```ts
 * const sessions = createWebSessions();
 * const url = `http://127.0.0.1:8080/login?token=${sessions.mintLoginToken()}`;
 * const cookie = sessions.redeemLoginToken(tokenFromUrl); // a Set-Cookie value, or undefined
 * sessions.valid(req.headers.cookie); // true while the session lives
 * ```
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** The session cookie's name. */
export const SESSION_COOKIE = "maqet_session";

/** Live sessions kept at most (a new one past it ends the oldest). */
export const MAX_SESSIONS = 256;

export interface WebSessionOptions {
  /** A session ends after this long without a request (default 12 h). */
  idleMs?: number;
  /** A printed login token that nobody used expires after this long (default 24 h). */
  loginTokenMs?: number;
  now?: () => number;
}

export interface WebSessions {
  /** A new one-time login token (for the printed URL). */
  mintLoginToken(): string;
  /** Consumes a login token: the `Set-Cookie` value of a new session, or undefined. */
  redeemLoginToken(token: string | null | undefined): string | undefined;
  /** A new session for a caller who proved the bearer token: its `Set-Cookie` value. */
  open(): string;
  /** True when the request's `Cookie` header names a live session (and refreshes it). */
  valid(cookieHeader: string | undefined): boolean;
  /** Ends the request's session; the `Set-Cookie` value that clears the cookie. */
  close(cookieHeader: string | undefined): string;
  /** Live sessions (for tests and `/v1/version`). */
  readonly size: number;
}

interface Entry {
  digest: Buffer;
  expires: number;
}

export function createWebSessions(options: WebSessionOptions = {}): WebSessions {
  const idleMs = options.idleMs ?? 12 * 3600_000;
  const loginMs = options.loginTokenMs ?? 24 * 3600_000;
  const now = options.now ?? Date.now;
  const logins: Entry[] = [];
  const sessions: Entry[] = [];

  const prune = (list: Entry[]) => {
    const t = now();
    for (let i = list.length - 1; i >= 0; i--) if (list[i]!.expires <= t) list.splice(i, 1);
  };
  /** Index of the entry whose digest matches: every entry is compared, in constant time each. */
  const find = (list: Entry[], secret: string): number => {
    const digest = sha256(secret);
    let found = -1;
    list.forEach((entry, i) => {
      if (timingSafeEqual(entry.digest, digest)) found = i;
    });
    return found;
  };
  const newSession = (): string => {
    prune(sessions);
    // Only token holders open sessions; still, memory stays bounded: the oldest goes first.
    if (sessions.length >= MAX_SESSIONS) sessions.shift();
    const secret = randomBytes(32).toString("base64url");
    sessions.push({ digest: sha256(secret), expires: now() + idleMs });
    return cookie(secret, Math.round(idleMs / 1000));
  };

  return {
    mintLoginToken: () => {
      const token = randomBytes(32).toString("base64url");
      logins.push({ digest: sha256(token), expires: now() + loginMs });
      return token;
    },
    redeemLoginToken: (token) => {
      prune(logins);
      if (!token || !/^[A-Za-z0-9_-]{16,128}$/.test(token)) return undefined;
      const i = find(logins, token);
      if (i === -1) return undefined;
      logins.splice(i, 1);
      return newSession();
    },
    open: newSession,
    valid: (header) => {
      prune(sessions);
      const secret = cookieValue(header);
      if (!secret) return false;
      const i = find(sessions, secret);
      if (i === -1) return false;
      sessions[i]!.expires = now() + idleMs;
      return true;
    },
    close: (header) => {
      const secret = cookieValue(header);
      if (secret) {
        const i = find(sessions, secret);
        if (i !== -1) sessions.splice(i, 1);
      }
      return cookie("", 0);
    },
    get size() {
      prune(sessions);
      return sessions.length;
    },
  };
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

function cookie(value: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeSeconds}`;
}

/** The session cookie's value in a `Cookie` header (a well-formed secret only). */
export function cookieValue(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq === -1 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    return /^[A-Za-z0-9_-]{16,128}$/.test(value) ? value : undefined;
  }
  return undefined;
}
