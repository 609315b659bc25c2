/**
 * What `GET /v1/version` says: the API's major version (in every path, `/v1`), maqet's version,
 * and the named extensions a client checks for instead of comparing versions (docs/agent.md).
 *
 * @example
 * ```ts
 * versionBody({ maqet, version: "0.1.0", host: "web01" }).extensions; // ["commands", …]
 * ```
 */
import type { Maqet } from "../api/maqet.ts";
import { hasPerCallerMetadata } from "./as-caller.ts";

/** The API's major version: in every path (`/v1`); features are announced as extensions. */
export const API_VERSION = 1;

/** Named features of this API; a client checks for one instead of comparing versions. */
export const API_EXTENSIONS = [
  "commands",
  "events-sse",
  "events-ndjson",
  "operation-progress",
  "caller-identity",
  "add-config-text",
  "console-follow",
  "console-interactive",
  "tcp-bearer-token",
  "web-console",
  "replay",
  "delivery-hold",
  "config-text",
  "cli",
] as const;

/** `GET /v1/version`: what this agent is and which extensions it has. */
export function versionBody(options: {
  maqet: Maqet;
  version: string;
  host: string;
  about?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    api: API_VERSION,
    apiVersion: `${API_VERSION}.0`,
    maqet: options.version,
    extensions: [...API_EXTENSIONS, ...(hasPerCallerMetadata(options.maqet) ? ["per-operation-caller"] : [])],
    pid: process.pid,
    host: options.host,
    ...options.about,
  };
}
