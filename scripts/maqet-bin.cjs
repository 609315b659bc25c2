#!/usr/bin/env node
// The `maqet` executable (package.json's bin), copied to dist/src/bin/maqet.js by scripts/build.mjs.
// It tries quick.cjs first (a quick command handed whole to an agent: see quickCall below), then
// runs cli.cjs, the CommonJS bundle of what every call needs, the way Node's CommonJS loader
// would (the same function wrapper), except that V8 compiles it from the code cache the build made
// beside it (cli.cjs.cache): Node 20's loaders take no code cache, and compiling the bundle on
// every run was a good part of what a call through an agent costs above a bare `node -e 0`.
// V8 refuses a cache made by another Node version or under other V8 flags (then it compiles, as
// without one); a cli.cjs newer than its cache (edited by hand) is compiled without it.
// A script compiled this way has no `import()` of its own (that needs --experimental-vm-modules):
// the bundle calls `__import`, this module's (see routeDynamicImports in scripts/build.mjs).
"use strict";
const { readFileSync, statSync } = require("node:fs");
const { join } = require("node:path");
const { Script } = require("node:vm");

const file = join(__dirname, "cli.cjs");
const cacheFile = `${file}.cache`;

/** cli.cjs compiled (with its code cache unless `fresh`), not yet run. */
function compileCli(fresh = false) {
  const source = readFileSync(file, "utf8");
  let cachedData;
  if (!fresh) {
    try {
      if (statSync(cacheFile).mtimeMs >= statSync(file).mtimeMs) cachedData = readFileSync(cacheFile);
    } catch {
      // no cache: compile
    }
  }
  return new Script(`(function (exports, require, module, __filename, __dirname, __import) {${source}\n})`, {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
  });
}

/** Runs a compiled cli.cjs as a CommonJS module; returns its exports. */
function runCli(script) {
  const cli = { exports: {} };
  script.runInThisContext()(cli.exports, require, cli, file, __dirname, (specifier) => import(specifier));
  return cli.exports;
}

/**
 * First, quick.cjs (src/cli/quick-call.ts): a quick command handed whole to an agent, printed
 * here, loading nothing more; undefined when the call takes the usual path (cli.cjs).
 */
function quickCall() {
  // The build puts quick.cjs itself here, in place of this require: one file fewer to find and read.
  const quick = require("./quick.cjs");
  return quick.quickCall(process.argv.slice(2), process.env, quick.table);
}

if (require.main === module) {
  // As an ESM entry's top-level await did: a command whose promise never settles before nothing
  // is left to run is an error (exit 13), never a silent success.
  let settled = false;
  const done = () => {
    settled = true;
  };
  quickCall()
    .then((outcome) => {
      if (typeof outcome === "number") {
        process.exitCode = outcome;
        return;
      }
      const cli = runCli(compileCli());
      // Sent to the agent, then the connection broke: told as the usual path tells it, never re-sent.
      return outcome === "broken" ? cli.reportBrokenCall(process.argv.slice(2)) : cli.runMaqetProcess();
    })
    .then(done, (error) => {
      done();
      throw error;
    });
  process.once("beforeExit", () => {
    if (settled) return;
    process.stderr.write(
      "maqet: internal error: the command ended without an outcome. This is a bug; please report it.\n",
    );
    process.exitCode = 13;
  });
} else module.exports = { compileCli, runCli, cacheFile };
