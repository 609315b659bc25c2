/**
 * What the built CLI prints when nobody reads it to the end, when a library warns, and when the
 * store URL is not a PostgreSQL one: real processes, real pipes (bash, head), a fresh HOME.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMaqet } from "../../src/api/maqet.ts";
import { cliBin } from "../support/build-dist.ts";
import { type CliSandbox, createCliSandbox } from "../support/cli-runner.ts";

const bin = cliBin;

/** Runs a bash pipeline; returns each command's exit status and maqet's stderr. */
function pipeline(
  script: string,
  env: Record<string, string>,
): Promise<{ statuses: number[]; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      "bash",
      ["--norc", "-c", `${script} 2>"$ERR"; echo "status:\${PIPESTATUS[*]}"; cat "$ERR" >&2`],
      { env, timeout: 120_000 },
      (error, stdout, stderr) => {
        if (error) return reject(error);
        const match = /status:([\d ]+)\n?$/.exec(stdout);
        resolve({
          statuses: match ? match[1]!.trim().split(" ").map(Number) : [],
          stdout: stdout.slice(0, match?.index),
          stderr,
        });
      },
    );
  });
}

describe("CLI output: pipes, warnings, --db", { timeout: 240_000 }, () => {
  let box: CliSandbox;
  beforeAll(async () => {
    box = await createCliSandbox();
    // More event text than a pipe holds (64 KiB): the rest is written after `head` has gone.
    await box.withStoreFree(async () => {
      const maqet = createMaqet({ dataDir: join(box.env.XDG_DATA_HOME!, "maqet"), env: box.env });
      try {
        for (let i = 0; i < 25; i++) {
          await maqet.add({ name: `vm${i}`, memory: "64M", args: ["-name", `vm${i}-${"x".repeat(4000)}`] });
        }
      } finally {
        await maqet.close();
      }
    });
  }, 200_000);
  afterAll(() => box.cleanup());

  it("`maqet events --json | head -1` prints one event and exits 0 without a word on stderr", async () => {
    const env = { ...box.env, ERR: join(box.home, "err.txt") };
    const r = await pipeline(`cd "$HOME" && node ${bin} events --json | head -1`, env);
    expect(r.statuses).toEqual([0, 0]);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toMatchObject({ type: "vm.defined", position: 1 });
    // The same for text output.
    const text = await pipeline(`cd "$HOME" && node ${bin} events | head -1`, env);
    expect(text.statuses).toEqual([0, 0]);
    expect(text.stderr).toBe("");
    expect(text.stdout).toMatch(/vm\.defined/);
  });

  it("a driver's warning (pg's SSL-mode notice) never reaches the terminal; MAQET_DEBUG shows it", async () => {
    const url = "postgres://maqet@127.0.0.1:1/maqet?sslmode=require";
    const r = await box.run(["--db", url, "ls"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Cannot connect to the PostgreSQL server");
    expect(r.stderr).not.toMatch(/warning/i);
    const debug = await box.run(["--db", url, "ls"], { MAQET_DEBUG: "1" });
    expect(debug.stderr).toContain("maqet: debug: Warning: SECURITY WARNING");
  });

  it.each([
    ["notaurl", "notaurl"],
    ["mysql://root:secret@db/maqet", "mysql://…"],
    ["http://db/maqet", "http://…"],
  ])("--db %s is invalid input (exit 3, expected postgres://…)", async (url, shown) => {
    for (const r of [await box.run(["--db", url, "ls"]), await box.run(["ls"], { MAQET_DATABASE_URL: url })]) {
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(`Invalid database URL '${shown}'`);
      expect(r.stderr).toContain("expected postgres://user:password@host:port/database");
      expect(r.stderr).not.toContain("secret");
    }
  });
});
