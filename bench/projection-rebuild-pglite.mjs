// The projection-rebuild measure on the embedded PGlite (its own process, so each dialect gets
// the harness's full time limit). Same flags as projection-rebuild.mjs.
process.argv.push("--pglite");
await import("./projection-rebuild.mjs");
