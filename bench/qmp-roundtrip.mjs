// Measure 1: one `query-status` round trip through maqet's QmpClient against a bare node:net
// socket doing the same JSON line exchange. One QEMU (`-machine none`, paused) with two QMP
// monitors, one per client, so both talk to the very same process; the two clients take turns
// in blocks so that machine noise falls on both alike.
import { join } from "node:path";
import { importDist, runMeasure } from "./harness.mjs";
import { killAndWait, rawQmpConnect, spawnQemu } from "./raw-qemu.mjs";
import { nowMs, row, summarize } from "./stats.mjs";

await runMeasure("qmp", "1. QMP round trip (query-status)", async (ctx) => {
  const { createQmpConnector } = await importDist(ctx, "src/adapters/qmp-client.js");
  const calls = ctx.quick ? 1000 : 3000;
  const block = 250;
  const warmup = 200;
  const sockClient = join(ctx.root, "qmp-a.sock");
  const sockRaw = join(ctx.root, "qmp-b.sock");
  const qemu = spawnQemu([
    ...["-machine", "none", "-accel", "tcg", "-nodefaults", "-display", "none", "-S"],
    ...["-qmp", `unix:${sockClient},server=on,wait=off`, "-qmp", `unix:${sockRaw},server=on,wait=off`],
  ]);
  ctx.defer(() => killAndWait(qemu));
  await qemu.spawned;

  const raw = await rawQmpConnect(sockRaw);
  ctx.defer(() => raw.close());
  const client = await createQmpConnector().connect(sockClient, { timeoutMs: 10_000 });
  ctx.defer(() => client.close());

  const sides = {
    client: { call: () => client.execute("query-status"), samples: [] },
    raw: { call: () => raw.execute("query-status"), samples: [] },
  };
  for (const side of Object.values(sides)) for (let i = 0; i < warmup; i++) await side.call();

  const t0 = nowMs();
  for (let done = 0, turn = 0; done < calls; done += block, turn++) {
    const order = turn % 2 === 0 ? [sides.client, sides.raw] : [sides.raw, sides.client];
    for (const side of order) {
      for (let i = 0; i < block; i++) {
        const start = nowMs();
        await side.call();
        side.samples.push((nowMs() - start) * 1000);
      }
    }
  }
  const wallS = (nowMs() - t0) / 1000;
  const status = await client.execute("query-status");
  const c = summarize(sides.client.samples);
  const r = summarize(sides.raw.samples);
  return {
    rows: [
      row("query-status round trip", "µs", c, "raw node:net socket", r),
      row("query-status calls/s (1 / median)", "calls/s", { median: 1e6 / c.median }, "raw", {
        median: 1e6 / r.median,
      }),
    ],
    notes: [
      `${c.n} calls per side after ${warmup} warm-up calls each, alternating blocks of ${block}; ${wallS.toFixed(1)} s`,
      `QEMU -machine none -accel tcg -S, two -qmp monitors; status ${status.status}`,
    ],
  };
});
