#!/usr/bin/env node
/**
 * The unit tests (test/unit/*.test.ts) whose imports reach any of the given source files, directly
 * or through other modules, comma-separated: the MUTATION_TESTS list for a narrowed mutation run
 * (docs/testing.md#mutation-testing). Follows relative `import`/`export ... from` and dynamic
 * `import()` of a literal path; a test that reaches a file only through a computed path is missed.
 *
 * @example
 * ```sh
 * MUTATION_TESTS=$(node test/support/mutation-tests.mjs src/actors/vm-view.ts) \
 *   npx stryker run --mutate src/actors/vm-view.ts
 * ```
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";

const targets = new Set(process.argv.slice(2).map((f) => resolve(f)));
if (targets.size === 0) {
  console.error("usage: node test/support/mutation-tests.mjs SOURCE_FILE...");
  process.exit(2);
}

const imports = new Map();
/** The relative modules `file` imports, as absolute .ts paths. */
function importsOf(file) {
  if (imports.has(file)) return imports.get(file);
  const found = new Set();
  imports.set(file, found);
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return found;
  }
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["'](\.[^"']+)["']/g)) {
    let path = resolve(dirname(file), m[1]);
    if (path.endsWith(".js")) path = `${path.slice(0, -3)}.ts`;
    if (!existsSync(path) && existsSync(`${path}.ts`)) path = `${path}.ts`;
    found.add(path);
  }
  return found;
}

/** True when `test` reaches one of the targets. */
function reaches(test) {
  const seen = new Set();
  const todo = [test];
  while (todo.length > 0) {
    for (const next of importsOf(todo.pop())) {
      if (targets.has(next)) return true;
      if (!seen.has(next)) {
        seen.add(next);
        todo.push(next);
      }
    }
  }
  return false;
}

const tests = readdirSync("test/unit")
  .filter((f) => f.endsWith(".test.ts"))
  .map((f) => resolve("test/unit", f));
console.log(
  tests
    .filter(reaches)
    .map((t) => relative(process.cwd(), t))
    .join(","),
);
