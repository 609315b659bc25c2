/**
 * Helpers for tests that talk to a real agent: JSON calls over its socket, the QEMU processes
 * that belong to a VM (by its id on their command line, from /proc), and the events stored.
 */
import { readdir, readFile } from "node:fs/promises";
import { type AgentEndpoint, agentFetch } from "../../src/client/agent-transport.ts";

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

/** Pids of live (non-zombie) QEMU processes whose command line names `vmId`. */
export async function qemuPidsOf(vmId: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, "utf8")).split("\0");
      if (!cmdline[0]?.includes("qemu-system") || !cmdline.some((a) => a.includes(vmId))) continue;
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (state !== "Z" && state !== "X") pids.push(Number(entry));
    } catch {}
  }
  return pids;
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
