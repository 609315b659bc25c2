// A throwaway PostgreSQL server for the event-store measure: the few lines of
// test/support/postgres-cluster.ts it needs, in plain JS. Same settings as the tests (fsync,
// synchronous_commit and full_page_writes off): it is thrown away, and both the store and the
// raw baseline run against the same server. As root, initdb and pg_ctl run as `postgres`.
//
// A detached watchdog shell stops the server if this process dies without calling stop().
import { execFile, spawn } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);

function findBin() {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) throw new Error(`no PostgreSQL server under ${root}: apt-get install -y postgresql`);
  return join(root, versions[0], "bin");
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a server with its files in `<prefix>XXXXXX`; returns
 * `{ url, version, durable, createDatabase(name) → its url, stop() }`.
 * `durable: true` keeps PostgreSQL's own defaults (fsync, synchronous_commit and
 * full_page_writes on: every commit waits for its WAL flush), as a production server runs.
 */
export async function startPostgres(prefix, { durable = false } = {}) {
  const bin = findBin();
  const asRoot = process.getuid() === 0;
  const dir = mkdtempSync(prefix);
  if (asRoot) {
    const uid = Number((await run("id", ["-u", "postgres"])).stdout.trim());
    const gid = Number((await run("id", ["-g", "postgres"])).stdout.trim());
    chownSync(dir, uid, gid);
  }
  const as = (cmd, args) =>
    asRoot ? run("runuser", ["-u", "postgres", "--", join(bin, cmd), ...args]) : run(join(bin, cmd), args);
  const data = join(dir, "data");
  try {
    await as("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"]);
    const port = await freePort();
    const settings = [
      `-p ${port}`,
      `-k ${dir}`,
      "-c listen_addresses=127.0.0.1",
      ...(durable ? [] : ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]),
    ].join(" ");
    await as("pg_ctl", ["-D", data, "-o", settings, "-l", join(dir, "log"), "-w", "-t", "30", "start"]);
    const pgCtl = `${asRoot ? "runuser -u postgres -- " : ""}${join(bin, "pg_ctl")}`;
    const watchdog = spawn(
      "sh",
      [
        "-c",
        `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done
${pgCtl} -D '${data}' -m immediate -w stop >/dev/null 2>&1; rm -rf '${dir}'`,
      ],
      { detached: true, stdio: "ignore" },
    );
    watchdog.unref();
    const version = (await run(join(bin, "postgres"), ["--version"])).stdout.trim();
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    return {
      url,
      version,
      durable,
      createDatabase: async (name) => {
        const admin = new pg.Client({ connectionString: url });
        await admin.connect();
        try {
          await admin.query(`create database ${name}`);
        } finally {
          await admin.end();
        }
        return url.replace(/\/postgres$/, `/${name}`);
      },
      stop: async () => {
        watchdog.kill();
        await as("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => {});
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
