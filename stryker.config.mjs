// Mutation testing of the unit tier (npm run test:mutation; docs/testing.md#mutation-testing).
// Stryker changes one thing in the code (a condition, an operator, a string...) and runs the unit
// tests that cover it: a mutant no test notices ("survived") marks a check that is missing.
// The scope is the pure parts named by issue 17; the unit tests run through vitest.unit.config.ts
// (no global setup). The machine is shared: concurrency 1 unless MUTATION_CONCURRENCY says more.
/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.unit.config.ts", related: true },
  checkers: [],
  // TypeScript 7 (native) has no JS compiler API for Stryker's tsconfig rewriting; vitest needs no
  // tsconfig, so point Stryker at none.
  tsconfigFile: "tsconfig.stryker-none.json",
  coverageAnalysis: "perTest",
  concurrency: Number(process.env.MUTATION_CONCURRENCY ?? 1),
  timeoutMS: 20_000,
  // A static mutant (one in a constant evaluated when its module loads: key tables, schemas,
  // messages) can only be tested by reloading every test file and running all of them; in
  // src/config that is 22% of the mutants and 92% of the run time. They are left out of the
  // score (Stryker counts them "ignored"; docs/testing.md gives their number) unless
  // MUTATION_STATIC=1.
  ignoreStatic: process.env.MUTATION_STATIC !== "1",
  // The first run of the whole unit tier, with coverage per test, on a busy shared machine.
  dryRunTimeoutMinutes: 45,
  mutate: [
    "src/config/**/*.ts",
    // src/events: the pure parts (no SQL, no I/O).
    "src/events/envelope.ts",
    "src/events/checkpoint.ts",
    "src/events/vm-events.ts",
    "src/events/qmp-events.ts",
    "src/events/snapshot-events.ts",
    "src/events/audit-entry.ts",
    "src/events/subscription.ts",
    "src/events/commit-notifier.ts",
    // src/actors: the machine (its chart, setup and states), the view, the policy.
    "src/actors/vm-machine.ts",
    "src/actors/vm-machine-setup.ts",
    "src/actors/vm-machine-starting.ts",
    "src/actors/vm-machine-running.ts",
    "src/actors/vm-machine-stopping.ts",
    "src/actors/vm-machine-types.ts",
    "src/actors/vm-view.ts",
    "src/actors/qmp-policy.ts",
  ],
  reporters: ["clear-text", "progress", "json"],
  // MUTATION_NAME=config (say) keeps one folder's report and incremental results apart from
  // another's, so a per-folder run (docs/testing.md) can be re-run with --incremental.
  jsonReporter: { fileName: `.tmp/mutation/${process.env.MUTATION_NAME ?? "mutation"}.json` },
  incrementalFile: `.tmp/mutation/${process.env.MUTATION_NAME ?? "mutation"}.incremental.json`,
  // Scratch space, not copied into the sandbox (dist is: crash-hook.test.ts runs a built module).
  ignorePatterns: [".tmp", "coverage"],
  tempDirName: ".tmp/stryker",
  cleanTempDir: "always",
  thresholds: { high: 80, low: 60, break: null },
};
