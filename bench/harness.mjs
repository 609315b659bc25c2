// What every measure file shares: its context (quick or full, which build, a scratch directory),
// cleanups that run even when the measure fails or is told to stop, and how the result leaves.
//
// Run by bench/run.mjs, a measure gets its context in BENCH_CTX and writes its result as JSON to
// ctx.resultFile. Run alone (`node bench/qmp-roundtrip.mjs [--quick]`) it makes its own context
// from ./dist and prints its table.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { resultTable } from "./stats.mjs";

export const benchDir = new URL(".", import.meta.url).pathname;
export const projectRoot = resolve(benchDir, "..");

/** `{ quick, dist, root, resultFile? }`; `root` is a short scratch path (unix sockets max 107 bytes). */
function context() {
  if (process.env.BENCH_CTX) return { ...JSON.parse(process.env.BENCH_CTX), owned: false };
  const root = mkdtempSync("/tmp/mqb-");
  return { quick: process.argv.includes("--quick"), dist: join(projectRoot, "dist"), root, owned: true };
}

/**
 * The `maqet` executable of the build under test: the bundle `npm run build` writes
 * (dist/src/bin/maqet.js, package.json's `bin`), or for a build older than the bundle the
 * unbundled entry.
 */
export function cliEntry(dist) {
  const bundled = join(dist, "src/bin/maqet.js");
  return existsSync(bundled) ? bundled : join(dist, "src/cli/bin.js");
}

/** Imports a module of the build under test, e.g. `importDist(ctx, "src/mod.js")`. */
export function importDist(ctx, relativePath) {
  return import(pathToFileURL(join(ctx.dist, relativePath)).href);
}

/**
 * Runs `measure(ctx)`, which returns `{ rows, notes?, info? }`, with `ctx.defer(fn)` cleanups
 * run in reverse order afterwards (and on SIGTERM/SIGINT), then exits.
 */
export async function runMeasure(name, title, measure) {
  const ctx = context();
  const cleanups = [];
  ctx.defer = (fn) => cleanups.push(fn);
  let cleaning;
  const cleanup = () => {
    cleaning ??= (async () => {
      for (const fn of cleanups.reverse()) {
        try {
          await fn();
        } catch (error) {
          process.stderr.write(`bench ${name}: cleanup failed: ${error?.message ?? error}\n`);
        }
      }
      if (ctx.owned) rmSync(ctx.root, { recursive: true, force: true });
    })();
    return cleaning;
  };
  for (const signal of ["SIGTERM", "SIGINT"]) {
    process.once(signal, () => {
      cleanup().finally(() => process.exit(130));
    });
  }
  let result;
  let error;
  try {
    result = await measure(ctx);
  } catch (e) {
    error = e;
  }
  await cleanup();
  const out = { name, title, ...result, error: error ? String(error?.stack ?? error) : undefined };
  if (ctx.resultFile) writeFileSync(ctx.resultFile, JSON.stringify(out));
  else if (error) process.stderr.write(`${title}: FAILED\n${out.error}\n`);
  else process.stdout.write(`${formatResult(out)}\n`);
  process.exit(error ? 1 : 0);
}

/** A measure's title, table and notes as text. */
export function formatResult(result) {
  const lines = [`## ${result.title}`, ""];
  if (result.rows?.length) lines.push(resultTable(result.rows));
  for (const note of result.notes ?? []) lines.push(`  - ${note}`);
  if (result.error) lines.push(`FAILED: ${result.error}`);
  return lines.join("\n");
}

/**
 * One HTTP request over a unix socket (the agent's API), on a connection of its own: `{ status,
 * text }`. Not Node's global agent, which keeps connections alive since Node 19: a request sent
 * on one the server is closing after its 5 s keep-alive fails with EPIPE.
 */
export function socketHttp(socket, method, path, body, headers = {}, timeoutMs = undefined) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath: socket,
        method,
        path,
        agent: false,
        headers: { ...(payload ? { "content-type": "application/json" } : {}), ...headers },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c) => {
          text += c;
        });
        res.on("end", () => resolve({ status: res.statusCode, text }));
      },
    );
    // A lost answer: rejected after `timeoutMs` when one is given.
    if (timeoutMs !== undefined) {
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    }
    req.on("error", reject);
    req.end(payload);
  });
}
