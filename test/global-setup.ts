/**
 * Runs once per `vitest run`, before any worker:
 * - builds dist/ (the e2e tests run the CLI as a user would: `node dist/src/bin/maqet.js`);
 * - starts a throwaway PostgreSQL 15 cluster unless MAQET_TEST_DATABASE_URL points at one;
 * - builds one migrated PGlite template that tests clone instead of paying ~4 s per instance.
 */
import type { TestProject } from "vitest/node";
import { buildDist } from "./support/build-dist.ts";
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
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cleanups: Array<() => Promise<void>> = [];
  await buildDist();
  const external = process.env.MAQET_TEST_DATABASE_URL;
  if (external) {
    project.provide("databaseUrl", external);
    project.provide("databaseSkipReason", "");
  } else {
    const pg = await startTestPostgres();
    project.provide("databaseUrl", pg.url);
    project.provide("databaseSkipReason", "");
    cleanups.push(pg.stop);
  }
  const template = await buildPgliteTemplate();
  project.provide("pgliteTemplate", template.path);
  cleanups.push(template.remove);
  return async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
}
