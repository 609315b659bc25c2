import { defineConfig } from "vitest/config";

// The unit tier alone, without the global setup (no dist build, no PostgreSQL, no PGlite
// template: unit tests use none of them). Used by mutation testing (stryker.config.mjs), which
// runs the unit tests thousands of times, and handy for a quick unit run:
//   npx vitest run -c vitest.unit.config.ts test/unit/vm-actor.test.ts
export default defineConfig({
  test: {
    name: "unit",
    // MUTATION_TESTS="test/unit/a.test.ts,test/unit/b.test.ts" narrows a mutation run to the
    // tests that exercise the files it mutates (docs/testing.md#mutation-testing).
    include: process.env.MUTATION_TESTS ? process.env.MUTATION_TESTS.split(",") : ["test/**/*.test.ts"],
    exclude: ["test/**/*.int.test.ts", "test/**/*.qemu.test.ts", "test/deno/**"],
    setupFiles: ["./test/support/maqet-matchers.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 30_000,
  },
});
