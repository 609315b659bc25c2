import { defineConfig } from "vitest/config";
import LongestFirstSequencer from "./test/support/longest-first-sequencer.ts";

// Three tiers by suffix (docs/testing.md): *.test.ts unit (fakes), *.int.test.ts PGlite + real
// PostgreSQL, *.qemu.test.ts real QEMU; test/e2e runs the built CLI as a user would.
//
// The global setup is the root's only: vitest runs a globalSetup once for the root and once more
// for each project that has it, so projects that inherited it (`extends: true`) built dist/,
// started a PostgreSQL server and built the PGlite template four times per run. The projects
// read what the root provides (inject).
const perProject = {
  setupFiles: ["./test/support/maqet-matchers.ts"],
  pool: "forks" as const,
  testTimeout: 30_000,
  hookTimeout: 60_000,
};

export default defineConfig({
  test: {
    globalSetup: ["./test/global-setup.ts"],
    maxWorkers: 2,
    // Longest files first, across the tiers, so both workers stay busy to the end.
    sequence: { sequencer: LongestFirstSequencer },
    projects: [
      {
        test: {
          ...perProject,
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: ["test/**/*.int.test.ts", "test/**/*.qemu.test.ts", "test/deno/**"],
        },
      },
      { test: { ...perProject, name: "int", include: ["test/**/*.int.test.ts"] } },
      { test: { ...perProject, name: "qemu", include: ["test/**/*.qemu.test.ts"] } },
    ],
  },
});
