/**
 * Deno run of the remote library: `createMaqet({ agent })` against a running agent (socket in
 * MAQET_AGENT), with no store loaded: add, start, qmp, an SSE subscription that sees the VM's
 * events, stop. Run by test/e2e/agent-remote.qemu.test.ts:
 *   MAQET_AGENT=/path/agent.sock npx deno@2.9.6 run -A test/deno/remote.ts
 * Prints "deno remote: ok <types>" and exits 0, or the error and exits 1.
 */
import process from "node:process";
import { createMaqet } from "../../src/mod.ts";

const socket = process.env.MAQET_AGENT;
if (!socket) throw new Error("set MAQET_AGENT to the agent's socket");
const maqet = createMaqet({ agent: socket, source: "deno-remote" });
let code = 0;
try {
  const seen: string[] = [];
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => {
    resolveStopped = r;
  });
  let resolveLive!: () => void;
  const live = new Promise<void>((r) => {
    resolveLive = r;
  });
  // From the end, every VM (this one does not exist yet): its events are picked by name. "end" is
  // the end when the stream opens, over the network: act once it is live (caughtUp).
  const sub = maqet.subscribe({ from: "end" }).subscribe((m) => {
    if (m.kind === "caughtUp") resolveLive();
    if (m.kind !== "event" || m.vmName !== "deno-remote") return;
    seen.push(m.event.type);
    if (m.event.type === "vm.stopped") resolveStopped();
  });
  await live;
  await maqet.add({ name: "deno-remote", accel: "tcg", memory: "64M" });
  const started = await maqet.start("deno-remote");
  if (started.state !== "running" || !started.pid) throw new Error(`not running: ${JSON.stringify(started)}`);
  const status = await maqet.qmp<{ status: string }>("deno-remote", "query-status");
  if (status.status !== "running") throw new Error(`query-status said ${status.status}`);
  await maqet.stop("deno-remote", { force: true });
  await Promise.race([
    stopped,
    new Promise((_, fail) => setTimeout(() => fail(new Error(`no vm.stopped on the stream: ${seen}`)), 30_000)),
  ]);
  sub.unsubscribe();
  await maqet.close();
  const denoVersion = (globalThis as { Deno?: { version: { deno: string } } }).Deno?.version.deno;
  console.log(`deno remote: ok ${seen.join(",")} (${denoVersion ? `Deno ${denoVersion}` : "not Deno"})`);
} catch (error) {
  console.error("deno remote: failed", error);
  code = 1;
}
process.exit(code);
