#!/usr/bin/env node
// `npm run build`: tsc compiles src/ and migrations/ to dist/ (the library, with its .d.ts), then
// esbuild builds the `maqet` executable into dist/src/bin/ (scripts/maqet-bin.cjs says how it runs):
//
//   maqet.js       the bin: a small CommonJS loader (package.json here says "commonjs")
//   cli.cjs        one CommonJS file: what every call needs (argument parsing from the registry,
//                  finding an agent) and the whole path through an agent (its client, the
//                  renderers); no package from node_modules is loaded from it at import time
//   cli.cjs.cache  V8's code cache of cli.cjs, made here by running it (train-code-cache.mjs)
//   *.mjs          ESM, split: what a call imports lazily and that needs a package (the in-process
//                  CLI with the store, XState and execa; the agent; YAML), loaded only on demand;
//                  those packages are bundled in (ESM_EXTERNAL: all but PGlite and pg)
//
// Why: Node 20 pays per ESM module file (URL resolution, stats, an async read, a link), compiles
// each file on every run (no module compile cache before Node 22), and Node's CommonJS loader takes
// no code cache; the thin path was 16 ESM files, ~60 ms above a bare `node -e 0` (2.75x, the goal is
// 1.5x). Bundling one file per side keeps the ESM loader out of a call through an agent entirely.
// A lazy import whose module reaches a package statically goes to the ESM side (found from the
// first pass's module graph below); the CommonJS file reaches packages only through `import()`,
// never `require()` (checked here), so rxjs or yaml is one instance in a process, the ESM one.
// dist/src/bin/ sits at the same depth as dist/src/cli/, so paths the code resolves from
// import.meta.url (package.json, the demo's examples/) are the same for both.
//
//   node scripts/build.mjs            # tsc + the executable
//   node scripts/build.mjs --no-bundle
import { execFileSync } from "node:child_process";
import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * The packages the ESM side loads from node_modules; every other one is bundled into it. Loading
 * rxjs, kysely, execa, yaml and xstate from node_modules cost ~0.4 s of CPU per in-process call
 * (hundreds of files, each resolved, read, compiled and linked: measured 0.65 s -> 0.23 s for
 * `maqet --version`, which loads the in-process CLI, on the 2-core dev machine). PGlite stays
 * outside (it loads its .wasm and .data beside its own module), pg too (optional native parts).
 */
const ESM_EXTERNAL = ["@electric-sql/pglite", "pg"];

/**
 * Packages whose `node` export is CommonJS, bundled from their ES module build instead: an
 * `import("rxjs")` of a bundled CommonJS module gives only a `default` export in esbuild's split
 * output (`const { filter } = await import("rxjs")` got undefined), while Node's own import of it
 * finds the named exports.
 */
const ESM_BUILDS = { rxjs: "rxjs/dist/esm/index.js", "rxjs/operators": "rxjs/dist/esm/operators/index.js" };

/** An esbuild plugin resolving each package of `builds` to that file under node_modules. */
function esmBuildsOf(builds) {
  return {
    name: "esm-builds-of-packages",
    setup(b) {
      const names = Object.keys(builds).map((n) => n.replace(/[/.]/g, "\\$&"));
      b.onResolve({ filter: new RegExp(`^(${names.join("|")})$`) }, (args) => ({
        path: join(root, "node_modules", builds[args.path]),
      }));
    },
  };
}

/** A bundled CommonJS package's require() of Node's modules, in an ES module. */
const REQUIRE_BANNER =
  'import { createRequire as __maqetCreateRequire } from "node:module"; const require = __maqetCreateRequire(import.meta.url);';

execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], {
  cwd: root,
  stdio: "inherit",
});
if (!process.argv.includes("--no-bundle")) await bundle();

async function bundle() {
  const { build } = await import("esbuild");
  const outdir = join(root, "dist/src/bin");
  const entry = join(root, "dist/src/cli/process-main.js");
  rmSync(outdir, { recursive: true, force: true });
  const common = { bundle: true, platform: "node", target: "node20", packages: "external", logLevel: "warning" };

  // 1. The module graph (nothing written): which lazily imported modules reach a package.
  const graph = await build({
    ...common,
    entryPoints: [entry],
    format: "esm",
    splitting: true,
    outdir,
    write: false,
    metafile: true,
  });
  const heavy = heavyLazyModules(graph.metafile.inputs);

  // 2. The ESM side: each heavy lazy module an entry, named after its path (cli/main.js -> cli-main.mjs).
  const esmEntries = Object.fromEntries([...heavy].map((input) => [esmName(input), join(root, input)]));
  const esm = await build({
    ...common,
    // The packages it needs go inside (see ESM_EXTERNAL), and CommonJS ones among them require() Node's own modules.
    packages: undefined,
    external: ESM_EXTERNAL,
    banner: { js: REQUIRE_BANNER },
    plugins: [esmBuildsOf(ESM_BUILDS)],
    entryPoints: esmEntries,
    format: "esm",
    splitting: true,
    outdir,
    outExtension: { ".js": ".mjs" },
    chunkNames: "chunk-[hash]",
    sourcemap: "linked",
    metafile: true,
  });

  // 3. The CommonJS side: everything else, one file; the heavy lazy imports become `import()`s of (2).
  const cjs = await build({
    ...common,
    entryPoints: [entry],
    format: "cjs",
    outfile: join(outdir, "cli.cjs"),
    // Whitespace and syntax, not names: 25% less text to read and hand to V8 at every call; stack
    // traces keep their function names (the map beside it has the lines).
    minifyWhitespace: true,
    minifySyntax: true,
    // `import.meta.url` of a module bundled here is this file's URL (package-version.ts finds
    // package.json from it: dist/src/bin/ sits at the depth of dist/src/cli/), made when read.
    define: { "import.meta": "__importMeta" },
    banner: {
      js: 'var __importMeta = { get url() { return require("node:url").pathToFileURL(__filename).href; } };',
    },
    sourcemap: "linked",
    metafile: true,
    plugins: [
      {
        name: "esm-side",
        setup(b) {
          b.onResolve({ filter: /^\./ }, (args) => {
            if (args.kind !== "dynamic-import") return undefined;
            const input = relative(root, join(args.resolveDir, args.path));
            return heavy.has(input) ? { path: `./${esmName(input)}.mjs`, external: true } : undefined;
          });
        },
      },
    ],
  });
  if (cjs.warnings.length > 0) throw new Error("the CommonJS bundle must build without warnings (see above)");
  const cliFile = join(outdir, "cli.cjs");
  writeFileSync(cliFile, routeDynamicImports(readFileSync(cliFile, "utf8"), cjs.metafile));

  const quick = await buildQuick(common, outdir);

  writeFileSync(join(outdir, "package.json"), `${JSON.stringify({ type: "commonjs" }, null, 2)}\n`);
  const bin = join(outdir, "maqet.js");
  writeFileSync(bin, withQuickInside(readFileSync(join(root, "scripts/maqet-bin.cjs"), "utf8"), outdir));
  chmodSync(bin, 0o755);
  // What each output imports, statically or lazily: test/int/bundle-imports.int.test.ts reads it.
  const meta = {
    inputs: { ...esm.metafile.inputs, ...cjs.metafile.inputs, ...quick.metafile.inputs },
    outputs: { ...esm.metafile.outputs, ...cjs.metafile.outputs, ...quick.metafile.outputs },
  };
  writeFileSync(join(outdir, "meta.json"), JSON.stringify(meta));

  // 4. The code cache, made by a clean `node` (no NODE_OPTIONS: V8 refuses a cache made under other flags).
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  execFileSync(process.execPath, [join(root, "scripts/train-code-cache.mjs"), outdir], { env, stdio: "inherit" });
}

/**
 * quick.cjs: the executable's first try (src/cli/quick-call.ts), a call handed whole to an agent.
 * Its table is baked in from the registry and package.json (which commands may be handed over,
 * which global options take a value, this maqet's version), so a call loads nothing else to
 * decide; it imports Node's modules only.
 */
async function buildQuick(common, outdir) {
  const { build } = await import("esbuild");
  const { COMMAND_ROUTES } = await import(join(root, "dist/src/api/command-routes.js"));
  const { oneShotTable } = await import(join(root, "dist/src/cli/one-shot-commands.js"));
  const { GLOBAL_OPTIONS } = await import(join(root, "dist/src/cli/parse-args.js"));
  const table = {
    commands: oneShotTable(COMMAND_ROUTES),
    globalValues: GLOBAL_OPTIONS.filter((o) => o.type !== "boolean").flatMap((o) => [o.name, ...(o.aliases ?? [])]),
    version: JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version,
  };
  const quick = await build({
    ...common,
    entryPoints: [join(root, "dist/src/cli/quick-call.js")],
    format: "cjs",
    outfile: join(outdir, "quick.cjs"),
    minifyWhitespace: true,
    minifySyntax: true,
    footer: { js: `module.exports.table=${JSON.stringify(table)};` },
    metafile: true,
  });
  const [out] = Object.values(quick.metafile.outputs);
  const builtin = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  const foreign = out.imports.filter((i) => !builtin.has(i.path));
  if (foreign.length > 0)
    throw new Error(`quick.cjs must import Node's modules only, not ${foreign.map((i) => i.path)}`);
  return quick;
}

/**
 * The bin's `require("./quick.cjs")` replaced by quick.cjs itself, run as a CommonJS module in its
 * own function scope (measured: ~1.5 ms less per quick call than finding and reading a second file).
 */
function withQuickInside(binText, outdir) {
  const quickFile = join(outdir, "quick.cjs");
  const quickText = readFileSync(quickFile, "utf8");
  const site = 'require("./quick.cjs")';
  if (binText.split(site).length !== 2) throw new Error(`scripts/maqet-bin.cjs must hold ${site} once`);
  rmSync(quickFile);
  return binText.replace(
    site,
    () =>
      `(function () {\nconst module = { exports: {} }, exports = module.exports;\n${quickText}\nreturn module.exports;\n})()`,
  );
}

/** Inputs (dist/src/…) imported with `import()` whose static imports reach a package from node_modules. */
function heavyLazyModules(inputs) {
  const builtin = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  const reachesPackage = new Map();
  const reaches = (input) => {
    if (reachesPackage.has(input)) return reachesPackage.get(input);
    reachesPackage.set(input, false); // a cycle adds nothing
    const found = inputs[input].imports.some(
      (i) => i.kind === "import-statement" && (i.external ? !builtin.has(i.path) : reaches(i.path)),
    );
    reachesPackage.set(input, found);
    return found;
  };
  const heavy = new Set();
  for (const { imports } of Object.values(inputs)) {
    for (const i of imports) if (i.kind === "dynamic-import" && !i.external && reaches(i.path)) heavy.add(i.path);
  }
  return heavy;
}

/** dist/src/cli/main.js -> cli-main */
function esmName(input) {
  return relative("dist/src", input).replace(/\.js$/, "").replaceAll("/", "-");
}

/**
 * A script that V8 compiles from a code cache (vm.Script) has no `import()` of its own without
 * --experimental-vm-modules: each `import(` esbuild wrote becomes `__import(`, the loader's (see
 * maqet-bin.cjs). Counted against the metafile, so a missed or an extra one fails the build; and
 * no package is `require()`d (a second, CommonJS instance of rxjs or yaml next to the ESM one).
 */
function routeDynamicImports(text, metafile) {
  const [out] = Object.values(metafile.outputs).filter((o) => o.entryPoint);
  const builtin = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  const required = out.imports.filter((i) => i.kind === "require-call" && !builtin.has(i.path));
  if (required.length > 0) throw new Error(`cli.cjs would require() ${required.map((i) => i.path).join(", ")}`);
  const expected = out.imports.filter((i) => i.kind === "dynamic-import").length;
  let found = 0;
  const routed = text.replace(/\bimport\(/g, () => {
    found++;
    return "__import(";
  });
  if (found !== expected) throw new Error(`cli.cjs: ${found} import( in the text, ${expected} in the metafile`);
  return routed;
}
