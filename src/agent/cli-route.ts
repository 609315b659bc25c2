/**
 * `POST /v1/cli`: a CLI call handed whole to the agent (src/cli/one-shot.ts runs it). Served on
 * the unix socket only (a TCP client has the command routes). The command's request goes to this
 * agent's own routes in its process, as this request's caller (identity and correlation id), with
 * the answers and errors a client would read off the wire. The CLI's renderers are loaded into the
 * agent on the first such call.
 *
 * @example
 * ```ts
 * const answer = await serveCli(req, { tcp: false, version, bodyLimit, runCommand });
 * sendJson(res, 200, answer);
 * ```
 */
import type { IncomingMessage } from "node:http";
import type { OneShotAnswer } from "../cli/one-shot.ts";
import { type AgentRequest, type AgentResponse, localResponse } from "../client/agent-transport.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import { errorResponse } from "./http-errors.ts";
import { readJsonBody } from "./request-body.ts";

export interface CliRouteOptions {
  /** Over TCP the route is refused. */
  tcp: boolean;
  version: string;
  bodyLimit: number;
  /** Runs one command route as this request's caller; throws what the route would answer. */
  runCommand(method: string, path: string, body: Record<string, unknown> | undefined): Promise<unknown>;
}

export async function serveCli(req: IncomingMessage, options: CliRouteOptions): Promise<OneShotAnswer> {
  if (options.tcp) {
    throw new MaqetError(
      "ROUTE_NOT_FOUND",
      "POST /v1/cli is served on the agent's unix socket only; over TCP use the command routes (docs/agent.md).",
    );
  }
  const { oneShotRequestOf, runOneShot } = await import("../cli/one-shot.ts");
  const request = oneShotRequestOf(await readJsonBody(req, options.bodyLimit));
  const local = async (call: AgentRequest): Promise<AgentResponse> => {
    try {
      const body = call.body as Record<string, unknown> | undefined;
      return localResponse(200, await options.runCommand(call.method, call.path, body));
    } catch (error) {
      const { status, body } = errorResponse(error);
      return localResponse(status, body);
    }
  };
  return runOneShot(request, { version: options.version, local });
}
