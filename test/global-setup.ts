/**
 * Runs once per `vitest run`, before any worker:
 * - builds dist/ (the e2e tests run the CLI as a user would: `node dist/src/bin/maqet.js`),
 *   unless it is newer than its sources (scripts/setup.sh has just built it);
 * - starts a throwaway PostgreSQL 15 cluster unless MAQET_TEST_DATABASE_URL points at one;
 * - builds one migrated PGlite template that tests clone instead of paying ~4 s per instance;
 * - has maqet create one embedded store that CLI and library sandboxes copy (~6 s of CPU saved
 *   per sandbox; test/support/embedded-store-template.ts).
 */
import type { TestProject } from "vitest/node";
import { buildDist } from "./support/build-dist.ts";
import { buildEmbeddedStoreTemplate } from "./support/embedded-store-template.ts";
import { buildPgliteTemplate } from "./support/pglite-template.ts";
import { startTestPostgres } from "./support/postgres-cluster.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** A PostgreSQL server URL for this run (a database the tests may create databases in). */
    databaseUrl: string;
    /** Why there is no server, when databaseUrl is empty. */
    databaseSkipReason: string;
    /** Path of a dumped, migrated PGlite data directory (a .tar) to load per test. */
    pgliteTemplate: string;
    /** A maqet data directory (`pglite/` in it) that sandboxes copy instead of creating a store. */
    embeddedStoreTemplate: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.MAQET_TEST_DATABASE_URL;
  // Independent but for the store template, which the built CLI makes: the build, the server and
  // the store template are child processes, the PGlite template runs here, so together they take
  // about as long as the longest chain.
  const building = buildDist();
  const [built, server, template, store] = await Promise.allSettled([
    building,
    external ? Promise.resolve({ url: external, stop: async () => {} }) : startTestPostgres(),
    buildPgliteTemplate(),
    building.then(buildEmbeddedStoreTemplate),
  ]);
  const cleanups: Array<() => Promise<void>> = [];
  if (server.status === "fulfilled") cleanups.push(server.value.stop);
  if (template.status === "fulfilled") cleanups.push(template.value.remove);
  if (store.status === "fulfilled") cleanups.push(store.value.remove);
  const teardown = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
  const failed = [built, server, template, store].find((r) => r.status === "rejected");
  if (failed) {
    await teardown();
    throw failed.reason;
  }
  if (server.status !== "fulfilled" || template.status !== "fulfilled" || store.status !== "fulfilled") {
    throw new Error("unreachable");
  }
  project.provide("databaseUrl", server.value.url);
  project.provide("databaseSkipReason", "");
  project.provide("pgliteTemplate", template.value.path);
  project.provide("embeddedStoreTemplate", store.value.path);
  return teardown;
}
