/**
 * The shipped `maqet` (scripts/build.mjs: dist/src/bin/maqet.js, package.json's `bin`, runs
 * cli.cjs, one CommonJS file, with the ESM side in *.mjs beside it) keeps the thin path thin
 * (issue 10): the CommonJS file holds the entry, the agent client and the renderers, loads no
 * store, state machine, process runner, rxjs or YAML except through a lazy `import()`, and the
 * in-process CLI is an ESM file loaded only on demand. Reads the metafile the build writes beside
 * the bundle (the global setup builds dist/ as `npm run build` does), so it checks what runs, not
 * the sources.
 */
import { execFile, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cliBin, projectRoot } from "../support/build-dist.ts";

interface Metafile {
  outputs: Record<
    string,
    {
      imports: Array<{ path: string; kind: string; external?: boolean }>;
      entryPoint?: string;
      inputs: Record<string, unknown>;
    }
  >;
}

const HEAVY = ["@electric-sql/pglite", "kysely", "xstate", "execa", "rxjs", "pg", "yaml"];
const BIN_DIR = "dist/src/bin";
const meta = JSON.parse(readFileSync(join(projectRoot, BIN_DIR, "meta.json"), "utf8")) as Metafile;
const outputOf = (file: string) => {
  const out = meta.outputs[file];
  if (!out)
    throw new Error(`${file} is not an output of the bundle (outputs: ${Object.keys(meta.outputs).join(", ")})`);
  return out;
};
const CLI = `${BIN_DIR}/cli.cjs`;

/** Output files and external packages reached from `start` without a lazy import(). */
function staticClosure(start: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const i of outputOf(file).imports) {
      if (i.kind === "dynamic-import") continue;
      if (i.external) packages.add(i.path);
      else visit(i.path);
    }
  };
  visit(start);
  return { files, packages };
}

const heavy = (packages: Set<string>) =>
  [...packages].filter((p) => HEAVY.some((h) => p === h || p.startsWith(`${h}/`)));

/** Packages whose files are bundled into these outputs (the ESM side holds all but PGlite and pg). */
function bundledPackages(files: Set<string>): Set<string> {
  const packages = new Set<string>();
  for (const file of files) {
    for (const input of Object.keys(outputOf(file).inputs)) {
      const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
      if (m) packages.add(m[1]!);
    }
  }
  return packages;
}

/** The ESM output cli.cjs imports lazily whose entry point (in dist/src) ends with `source`. */
function lazyEsm(source: string): string {
  const lazy = outputOf(CLI)
    .imports.filter((i) => i.kind === "dynamic-import" && i.path.startsWith("./"))
    .map((i) => `${BIN_DIR}/${i.path.slice(2)}`);
  const hit = lazy.find((p) => outputOf(p).entryPoint?.endsWith(source));
  if (!hit) throw new Error(`cli.cjs does not lazily import ${source} (it imports: ${lazy.join(", ")})`);
  return hit;
}

describe("the bundled maqet executable", () => {
  it("is package.json's bin, and runs cli.cjs with its code cache", () => {
    const pkg = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as { bin: { maqet: string } };
    expect(join(projectRoot, pkg.bin.maqet)).toBe(cliBin);
    expect(readFileSync(cliBin, "utf8")).toContain('join(__dirname, "cli.cjs")');
    expect(outputOf(CLI).entryPoint).toBe("dist/src/cli/process-main.js");
    expect(existsSync(join(projectRoot, `${CLI}.cache`)), "the build's code cache").toBe(true);
  });

  it("holds the path through an agent in one file that loads no store, state machine, process runner or rxjs", () => {
    const inside = Object.keys(outputOf(CLI).inputs);
    expect(inside).toEqual(expect.arrayContaining(["dist/src/cli/agent-cli.js", "dist/src/cli/render.js"]));
    const start = staticClosure(CLI);
    expect([...start.files]).toEqual([CLI]);
    expect(heavy(start.packages)).toEqual([]);
    // Packages only through import() (one ESM instance per process); Node's own modules may be require()d.
    expect([...start.packages].filter((p) => !p.startsWith("node:"))).toEqual([]);
  });

  it("loads the in-process CLI only on demand, and that one does reach the store", () => {
    const main = lazyEsm("src/cli/main.js");
    expect(main.endsWith(".mjs")).toBe(true);
    // The walk is real: the in-process side statically reaches the heavy packages, PGlite from
    // node_modules, kysely and XState bundled in (scripts/build.mjs, ESM_EXTERNAL).
    const closure = staticClosure(main);
    expect(heavy(bundledPackages(closure.files))).toEqual(expect.arrayContaining(["kysely", "xstate"]));
    // Loaded from node_modules: at most PGlite and pg (each a lazy import() in the sources).
    expect(heavy(closure.packages).filter((p) => p !== "@electric-sql/pglite" && p !== "pg")).toEqual([]);
  });

  it("has no import() of a bundled CommonJS package (its named exports would be lost)", () => {
    // esbuild splits such a module into a chunk whose only export is `default`: a
    // `const { filter } = await import("rxjs")` then reads undefined (scripts/build.mjs ESM_BUILDS).
    const wrappers = Object.keys(meta.outputs)
      .filter((file) => file.endsWith(".mjs"))
      .filter((file) => /^export default require_\w+\(\);$/m.test(readFileSync(join(projectRoot, file), "utf8")));
    expect(wrappers).toEqual([]);
  });

  it("answers --version and help from cli.cjs alone: no import() of the in-process CLI", async () => {
    // The bin's own loader, with the bundle's import() watched (maqet-bin.cjs passes `__import`).
    const { compileCli } = createRequire(import.meta.url)(cliBin) as {
      compileCli: () => { runInThisContext: () => (...args: unknown[]) => void };
    };
    const imported: string[] = [];
    const cli = { exports: {} as { runMaqet: (argv: string[], io: unknown) => Promise<number> } };
    const file = join(projectRoot, CLI);
    compileCli().runInThisContext()(
      cli.exports,
      createRequire(file),
      cli,
      file,
      join(projectRoot, BIN_DIR),
      (s: string) => {
        imported.push(s);
        return import(join(projectRoot, BIN_DIR, s));
      },
    );
    const run = async (argv: string[]) => {
      const out: string[] = [];
      const io = {
        env: {},
        stdout: (t: string) => out.push(t),
        stderr: (t: string) => out.push(`stderr: ${t}`),
        write() {},
      };
      return { code: await cli.exports.runMaqet(argv, io), out: out.join("\n") };
    };
    const pkg = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as { version: string };
    expect(await run(["--version"])).toEqual({ code: 0, out: pkg.version });
    const help = await run(["ls", "--help"]);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^Usage: maqet ls /);
    expect((await run([])).out).toMatch(/^Usage: maqet <command>/);
    expect(imported).toEqual([]);
    // The watch is real: an unknown help topic goes to the in-process CLI, which says what is wrong.
    const unknown = await run(["help", "nope"]);
    expect(unknown.out).toContain("no command or group 'nope'");
    expect(imported.some((s) => s.includes("cli-main"))).toBe(true);
  });

  it("does not load node:tty when its output is a pipe (isatty would, at every call)", () => {
    // Node's list of the built-in modules this process loaded, printed as it exits.
    const probe = `data:text/javascript,process.on("exit",()=>process.stderr.write("\\nMODULES "+process.moduleLoadList.join(",")))`;
    const run = spawnSync(process.execPath, ["--import", probe, cliBin, "--version"], {
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    expect(run.status, run.stderr).toBe(0);
    const modules = /MODULES (.*)/.exec(run.stderr)?.[1]?.split(",") ?? [];
    expect(modules, run.stderr).toContain("NativeModule net"); // the list is real: stdout (a pipe) is a net.Socket
    expect(modules).not.toContain("NativeModule tty");
  });

  it("hands a quick command to an agent whole and prints its answer, compiling no cli.cjs", async () => {
    // A stand-in agent on a unix socket: answers POST /v1/cli as the agent does (docs/agent.md).
    const dir = mkdtempSync(join(tmpdir(), "maqet-quick-"));
    const socket = join(dir, "agent.sock");
    const bodies: Array<Record<string, unknown>> = [];
    const server = createServer((req, res) => {
      let text = "";
      req.on("data", (c: Buffer) => (text += c));
      req.on("end", () => {
        bodies.push({
          method: req.method,
          url: req.url,
          pid: req.headers["maqet-pid"],
          body: JSON.parse(text || "{}"),
        });
        const answer = JSON.stringify({
          exitCode: 3,
          command: "status",
          output: [
            [1, "out one\n"],
            [2, "err\n"],
            [1, "out two\n"],
          ],
        });
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(answer) });
        res.end(answer);
      });
    });
    await new Promise<void>((r) => server.listen(socket, r));
    try {
      // vm.Script is how the bin compiles cli.cjs: counted from a preload.
      const probe = `data:text/javascript,import vm from "node:vm"; const S = vm.Script; vm.Script = class extends S { constructor(...a) { super(...a); process.stderr.write("COMPILED\\n"); } };`;
      const run = await runNode(["--import", probe, cliBin, "--agent", socket, "status", "web"]);
      expect({ status: run.status, stdout: run.stdout, stderr: run.stderr }).toEqual({
        status: 3,
        stdout: "out one\nout two\n",
        stderr: "err\n",
      });
      const pkg = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as { version: string };
      expect(bodies).toEqual([
        {
          method: "POST",
          url: "/v1/cli",
          pid: String(run.pid),
          body: {
            argv: ["--agent", socket, "status", "web"],
            version: pkg.version,
            agent: socket,
            env: {},
            tty: { stdout: false, stderr: false },
          },
        },
      ]);
      // The probe is real: a call that is not quick compiles cli.cjs (and reports the agent it cannot reach).
      const usual = await runNode(["--import", probe, cliBin, "--agent", join(dir, "none.sock"), "ls"]);
      expect(usual.stderr).toContain("COMPILED");
      expect(usual.status).toBe(1);
    } finally {
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** node ARGS to its end, without blocking this process (a stand-in agent here must answer it). */
function runNode(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string; pid: number }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      args,
      { encoding: "utf8", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") reject(error);
        else resolve({ status: error ? (error.code as number) : 0, stdout, stderr, pid: child.pid! });
      },
    );
  });
}
