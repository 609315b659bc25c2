import { defineConfig } from "vitest/config";

// Three tiers by suffix (docs/testing.md): *.test.ts unit (fakes), *.int.test.ts PGlite + real
// PostgreSQL, *.qemu.test.ts real QEMU; test/e2e runs the built CLI as a user would.
export default defineConfig({
  test: {
    globalSetup: ["./test/global-setup.ts"],
    setupFiles: ["./test/support/maqet-matchers.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: ["test/**/*.int.test.ts", "test/**/*.qemu.test.ts", "test/deno/**"],
        },
      },
      { extends: true, test: { name: "int", include: ["test/**/*.int.test.ts"] } },
      { extends: true, test: { name: "qemu", include: ["test/**/*.qemu.test.ts"] } },
    ],
  },
});
