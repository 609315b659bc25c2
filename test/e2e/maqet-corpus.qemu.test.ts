/**
 * The MAQET corpus: configs and command lines taken from MAQET's own documentation (fixtures in
 * test/fixtures/maqet-corpus, each with its source), run as MAQET documents them.
 * - Every config is added (`maqet add FILE`), and started firmware-only where this machine can
 *   (real QEMU, TCG); a started VM's QEMU command line is checked against the config's
 *   `arguments`. A config that cannot start here says why in its `# maqet-corpus start:` line.
 * - Every command line runs, in order, through the built CLI in a fresh HOME, and exits as
 *   expected. Where maqet differs on purpose, docs/maqet-compat.md says why.
 */
import { cp, mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { splitCommandLine } from "../../src/adapters/run-editor.ts";
import type { Maqet } from "../../src/api/maqet.ts";
import { projectRoot } from "../support/build-dist.ts";
import { type CliSandbox, createCliSandbox } from "../support/cli-runner.ts";
import { maqetForSuite } from "../support/library-maqet.ts";
import { createTestDatabase } from "../support/postgres-cluster.ts";

const corpus = join(projectRoot, "test/fixtures/maqet-corpus");

interface CorpusConfig {
  file: string;
  source: string;
  start: "yes" | { skip: string };
  /** A known gap: what fails today and whose pending work fixes it. */
  gap?: string;
}

async function readConfigs(): Promise<CorpusConfig[]> {
  const dir = join(corpus, "configs");
  const out: CorpusConfig[] = [];
  for (const file of (await readdir(dir)).filter((f) => f.endsWith(".yaml")).sort()) {
    const text = await readFile(join(dir, file), "utf8");
    const header = (key: string) => new RegExp(`^# maqet-corpus ${key}: (.*)$`, "m").exec(text)?.[1];
    const start = header("start") ?? "";
    out.push({
      file,
      source: header("source") ?? "",
      start: start === "yes" ? "yes" : { skip: start.replace(/^skip /, "") },
      ...(header("gap") ? { gap: header("gap") } : {}),
    });
  }
  return out;
}

interface CorpusLine {
  expected: number;
  argv: string[];
  line: string;
  source: string;
}

async function readCommands(): Promise<CorpusLine[]> {
  const text = await readFile(join(corpus, "commands.txt"), "utf8");
  let source = "";
  const out: CorpusLine[] = [];
  for (const line of text.split("\n")) {
    const src = /^# source: (.*)$/.exec(line);
    if (src) source = src[1]!;
    const m = /^(\d) \| maqet (.*)$/.exec(line);
    if (m) out.push({ expected: Number(m[1]), argv: splitCommandLine(m[2]!), line: `maqet ${m[2]}`, source });
  }
  return out;
}

const configs = await readConfigs();
const commands = await readCommands();

describe("MAQET corpus: configs from MAQET's docs, added and started as documented", { timeout: 600_000 }, () => {
  let dir: string;
  let maqet: Maqet;
  maqetForSuite(
    "maqet-corpus-",
    (s) => ({ dir, maqet } = s),
    (dir) => ({ env: { PATH: process.env.PATH, HOME: dir }, source: "test" }),
    600_000,
  );

  it("has at least 30 configs, each naming its source", () => {
    expect(configs.length).toBeGreaterThanOrEqual(30);
    for (const c of configs) expect(c.source, c.file).toMatch(/maqet 0\.0\.1[2-5]/);
  });

  for (const config of configs) {
    const name = `c${config.file.slice(0, 2)}`;
    const addTest = config.gap ? it.fails : it;
    addTest(`${config.file}: maqet add${config.gap ? ` — KNOWN GAP: ${config.gap}` : ""}`, async () => {
      // Each config in its own directory: a disk without file: goes next to it.
      const home = join(dir, name);
      await mkdir(home, { recursive: true });
      await cp(join(corpus, "configs", config.file), join(home, config.file));
      const added = await maqet.add(join(home, config.file), { name });
      expect(added).toMatchObject({ name, state: "stopped" });
    });
    if (config.gap) {
      it.skip(`${config.file}: start skipped — the add is a known gap (${config.gap})`, () => {});
    } else if (config.start === "yes") {
      it(`${config.file}: maqet start (firmware only), its arguments on QEMU's command line, stop`, async () => {
        const status = await maqet.start(name, { timeoutMs: 90_000 });
        expect(status.state).toBe("running");
        const argv = (await readFile(`/proc/${status.pid}/cmdline`, "utf8")).split("\0");
        const { config: stored } = await maqet.info(name);
        for (const item of (stored.arguments as unknown[]) ?? []) {
          if (typeof item !== "object" || item === null) continue;
          const entries = Object.entries(item as Record<string, unknown>);
          if (entries.length !== 1 || typeof entries[0]![1] !== "string") continue;
          const [key, value] = entries[0]! as [string, string];
          const at = argv.findIndex((word, i) => word === `-${key}` && argv[i + 1] === value);
          expect(at, `-${key} ${value} in ${argv.join(" ")}`).toBeGreaterThan(0);
        }
        const stopped = await maqet.stop(name, { force: true });
        expect(stopped.state).toBe("stopped");
      });
    } else {
      it.skip(`${config.file}: start skipped — ${config.start.skip}`, () => {});
    }
  }
});

describe("MAQET corpus: command lines from MAQET's docs, through the built CLI", { timeout: 1_800_000 }, () => {
  let box: CliSandbox;
  let db: { url: string; drop(): Promise<void> } | undefined;
  // A fresh HOME; the store is a fresh database on the test PostgreSQL server (MAQET_DATABASE_URL):
  // each command is its own process, and opening the embedded store costs seconds a call on a busy
  // box. MAQET_CORPUS_STORE=embedded runs the same lines on the embedded store.
  const embedded = process.env.MAQET_CORPUS_STORE === "embedded";
  beforeAll(async () => {
    box = await createCliSandbox();
    await cp(join(corpus, "home"), box.home, { recursive: true });
    if (!embedded) {
      db = await createTestDatabase(inject("databaseUrl"));
      box.env.MAQET_DATABASE_URL = db.url;
    }
  }, 600_000);
  afterAll(async () => {
    await box.run(["rm", "--all", "--force"]);
    await box.run(["--maqet-data-dir", join(box.home, "maqet-data"), "rm", "--all", "--force"]);
    await db?.drop();
    await box.cleanup();
  }, 600_000);

  it("has at least 30 command lines, each naming its source", () => {
    expect(commands.length).toBeGreaterThanOrEqual(30);
    for (const c of commands) expect(c.source, c.line).toMatch(/maqet/);
  });

  for (const [i, command] of commands.entries()) {
    it(`${String(i + 1).padStart(2, "0")} ${command.line} → exit ${command.expected}`, async () => {
      const argv = command.argv.map((a) => a.replaceAll("{home}", box.home));
      const result = await box.run(argv);
      expect(
        result.code,
        `${command.line}\n(${command.source})\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
      ).toBe(command.expected);
      if (command.expected === 0) expect(result.stderr, command.line).not.toMatch(/internal error/);
    });
  }
});
