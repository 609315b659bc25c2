/**
 * Helpers for tests that talk to a real agent: a sandbox with its agent for a suite, JSON calls
 * over its socket, the QEMU processes that belong to a VM (by its id on their command line, from
 * /proc), and the events stored.
 */
import { afterAll, beforeAll } from "vitest";
import { type AgentEndpoint, agentFetch } from "../../src/client/agent-transport.ts";
import {
  type CliSandbox,
  createCliSandbox,
  type SandboxAgent,
  startSandboxAgent,
  stopSandboxAgent,
} from "./cli-runner.ts";
import { qemuProcesses } from "./qemu-processes.ts";

export interface AgentSuite {
  box: CliSandbox;
  agent: SandboxAgent;
  endpoint: AgentEndpoint;
}

/**
 * A CLI sandbox and its running `maqet agent` for the suite (the sandbox's own agent when the run
 * is in agent mode): opened before the suite's tests and handed to `set`; after them, `cleanup`
 * (stop the suite's VMs), then the agent is stopped (`suite.agent`: a test that restarts the
 * agent puts the new one there) and the sandbox removed. Each hook may take 300 s: a first agent creates its PGlite store, a minute or more on a loaded 2-core box.
 *
 * @example
 * ```ts
 * let box: CliSandbox;
 * let endpoint: AgentEndpoint;
 * agentForSuite((s) => ({ box, endpoint } = s), async () => void (await box.run(["stop", "web", "--force"])));
 * ```
 */
export function agentForSuite(set: (suite: AgentSuite) => void, cleanup: () => Promise<void>): void {
  let suite: AgentSuite | undefined;
  let box: CliSandbox | undefined;
  beforeAll(async () => {
    box = await createCliSandbox();
    const agent = box.agent ?? (await startSandboxAgent(box.env, box.home));
    suite = { box, agent, endpoint: { socket: agent.socket } };
    set(suite);
  }, 300_000);
  afterAll(async () => {
    if (suite) await cleanup();
    if (suite) await stopSandboxAgent(suite.agent);
    await box?.cleanup();
  }, 300_000);
}

export async function api<T = unknown>(
  endpoint: AgentEndpoint,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: T }> {
  const res = await agentFetch(endpoint, { method, path, ...(body === undefined ? {} : { body }), headers });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

/**
 * Pids of live (non-zombie) QEMU processes whose command line mentions `text`: a VM id, or a
 * directory (every QEMU whose runtime files are under it, e.g. one simulated host's).
 *
 * @example
 * ```ts
 * expect(await qemuPidsOf(host.runtimeDir)).toHaveLength(1);
 * ```
 */
export async function qemuPidsOf(text: string): Promise<number[]> {
  return (qemuProcesses([text]).get(text) ?? []).map((p) => p.pid);
}

export interface ApiEvent {
  position: number;
  type: string;
  vm: string | null;
  actor: { user?: string; pid?: number; host?: string } | null;
  correlationId: string | null;
  source: string | null;
  data: Record<string, unknown>;
}

/** Every stored event (GET /v1/events as one JSON array). */
export async function storedEvents(endpoint: AgentEndpoint, vm?: string): Promise<ApiEvent[]> {
  const r = await api<ApiEvent[]>(endpoint, "GET", `/v1/events${vm ? `?vm=${encodeURIComponent(vm)}` : ""}`);
  if (r.status !== 200) throw new Error(`GET /v1/events: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
