/**
 * A throwaway PostgreSQL cluster for one test run, and a fresh database per test file.
 *
 * The server refuses to run as root, so when the tests run as root initdb and pg_ctl run as the
 * `postgres` user (runuser) in a temp directory it owns. Durability is off: it is thrown away.
 *
 * @example
 * ```ts
 * const pg = await startTestPostgres();
 * const { url, drop } = await createTestDatabase(pg.url);
 * // ... tests against url ...
 * await drop();
 * await pg.stop();
 * ```
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { freePort } from "./free-port.ts";

const run = promisify(execFile);

export interface TestPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust auth). */
  url: string;
  stop(): Promise<void>;
  /** An immediate restart (a crash and recovery, as a failover looks to clients): every connection drops. */
  restart(): Promise<void>;
  /** Stops the server, keeping its data (clients get "connection refused") until {@link up}. */
  down(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  up(): Promise<void>;
}

export interface TestPostgresOptions {
  /**
   * Commits acknowledged only once their WAL reached the kernel (`synchronous_commit` on), so
   * that a {@link TestPostgres.restart} (a crash: `pg_ctl stop -m immediate`) loses none, as with
   * the durable server maqet requires. Off by default (faster): then a restart forgets the last
   * commits its clients were told succeeded (a finished routed command ran again, a VM's
   * `vm.started` vanished, in issue 13's chaos test). fsync stays off either way: the machine
   * does not crash, only the server.
   */
  durableCommits?: boolean;
}

/**
 * initdb + start a cluster on 127.0.0.1 and a free port (~1 s). Throws with the install command
 * when the server binaries are missing.
 *
 * @example
 * ```ts
 * const { url, stop } = await startTestPostgres();
 * ```
 */
export async function startTestPostgres(options: TestPostgresOptions = {}): Promise<TestPostgres> {
  const bin = findPostgresBin();
  const asRoot = process.getuid?.() === 0;
  const dir = await mkdtemp(join(tmpdir(), "maqet-pg-"));
  if (asRoot) {
    const { stdout } = await run("id", ["-u", "postgres"]).catch((error: unknown) => {
      throw new Error(
        `Running as root, the test PostgreSQL must run as the 'postgres' user, which does not exist (${String(error)}). ` +
          "Install the server with `apt-get install -y postgresql` (it creates the user), or set MAQET_TEST_DATABASE_URL.",
      );
    });
    const { stdout: gid } = await run("id", ["-g", "postgres"]);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const as = (cmd: string, args: string[]) =>
    asRoot ? run("runuser", ["-u", "postgres", "--", join(bin, cmd), ...args]) : run(join(bin, cmd), args);
  const data = join(dir, "data");
  const log = join(dir, "log");
  try {
    await as("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"]);
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const settings = [
        `-p ${port}`,
        `-k ${dir}`,
        "-c listen_addresses=127.0.0.1",
        "-c fsync=off",
        ...(options.durableCommits ? [] : ["-c synchronous_commit=off"]),
        "-c full_page_writes=off",
        "-c max_connections=200",
      ].join(" ");
      try {
        await as("pg_ctl", ["-D", data, "-o", settings, "-l", log, "-w", "-t", "30", "start"]);
      } catch (error) {
        lastError = error; // most likely the port was taken between probing and binding
        continue;
      }
      const watchdog = startWatchdog(bin, data, dir, asRoot);
      const stop = async (): Promise<void> => {
        watchdog.kill();
        await as("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => {});
        // Kept for a failure's evidence (the cluster tests' agent logs go there too).
        if (process.env.MAQET_CLUSTER_LOGS) {
          await copyFile(log, join(process.env.MAQET_CLUSTER_LOGS, `postgres-${port}.log`)).catch(() => {});
        }
        await rm(dir, { recursive: true, force: true });
      };
      const restart = async (): Promise<void> => {
        await as("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
        await as("pg_ctl", ["-D", data, "-o", settings, "-l", log, "-w", "-t", "30", "start"]);
      };
      return {
        url: `postgres://postgres@127.0.0.1:${port}/postgres`,
        stop,
        restart,
        // The server goes away (connections refused) and comes back on the same port and data.
        down: async () => void (await as("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"])),
        up: async () => void (await as("pg_ctl", ["-D", data, "-o", settings, "-l", log, "-w", "-t", "30", "start"])),
      };
    }
    const tail = await readFile(log, "utf8").catch(() => "");
    throw new Error(`Test PostgreSQL did not start: ${String(lastError)}\n${tail.slice(-2000)}`);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Creates an empty database on the server behind `baseUrl` and returns its URL; `drop()` removes
 * it, closing any connection still open to it.
 *
 * @example
 * ```ts
 * const testDb = await createTestDatabase(inject("databaseUrl"));
 * afterAll(() => testDb.drop());
 * ```
 */
export async function createTestDatabase(baseUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `maqet_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  await withClient(baseUrl, (c) => c.query(`create database ${name}`));
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => withClient(baseUrl, (c) => c.query(`drop database if exists ${name} with (force)`)),
  };
}

async function withClient(url: string, use: (client: pg.Client) => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await use(client);
  } finally {
    await client.end();
  }
}

/**
 * pg_ctl daemonises the server, so a test run killed before its teardown (a timeout, ^C twice)
 * would leave it running forever. A detached shell waits for this process to go away and then
 * stops the cluster and removes its directory; a normal stop() kills the shell first.
 */
function startWatchdog(bin: string, data: string, dir: string, asRoot: boolean): ChildProcess {
  const pgCtl = `${asRoot ? "runuser -u postgres -- " : ""}${join(bin, "pg_ctl")}`;
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done
${pgCtl} -D '${data}' -m immediate -w stop >/dev/null 2>&1
rm -rf '${dir}'`;
  const child = spawn("sh", ["-c", script], { detached: true, stdio: "ignore" });
  child.unref();
  return child;
}

function findPostgresBin(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest === undefined) {
    throw new Error(
      `No PostgreSQL server binaries under ${root}/<version>/bin. Install them with ` +
        "`apt-get install -y postgresql`, or point MAQET_TEST_DATABASE_URL at a server you may create databases on.",
    );
  }
  return join(root, newest, "bin");
}
