/**
 * Reads a request's JSON body with a size limit: over the limit is REQUEST_TOO_LARGE (413, the
 * rest is not read), text that is not JSON or not an object is INVALID_ARGUMENT (400). An empty
 * body is an empty object.
 *
 * @example
 * ```ts
 * const body = await readJsonBody(req, 1024 * 1024);
 * ```
 */
import type { IncomingMessage } from "node:http";
import { MaqetError } from "../errors/maqet-error.ts";

/** Default body limit: a VM config is a few lines; 1 MiB leaves room for the largest. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

export async function readJsonBody(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const declared = Number(req.headers["content-length"] ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  if (size === 0) return {};
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new MaqetError("INVALID_ARGUMENT", "Invalid request body: not UTF-8 text. Send a JSON object.");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid request body: malformed JSON (${(error as Error).message}). Send a JSON object, e.g. {"force": true}.`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new MaqetError("INVALID_ARGUMENT", 'Invalid request body: it must be a JSON object, e.g. {"force": true}.');
  }
  return parsed as Record<string, unknown>;
}

function tooLarge(limit: number): MaqetError {
  return new MaqetError(
    "REQUEST_TOO_LARGE",
    `Request body over the agent's limit of ${limit} bytes; nothing was run. A VM config is a few lines: check what is sent.`,
    { details: { limit } },
  );
}
