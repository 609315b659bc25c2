/**
 * Every migration, in order, imported statically: no directory listing, so the list works the
 * same from the sources, the built npm package and Deno.
 *
 * @example
 * ```ts
 * import { migrations } from "../../migrations/index.ts";
 * console.log(migrations.map((m) => m.name)); // ["0001-initial"]
 * ```
 */
import type { Migration } from "kysely";
import { initial } from "./0001-initial.ts";
import { appendFunction } from "./0002-append-function.ts";
import { projections } from "./0003-projections.ts";
import { leases } from "./0004-leases.ts";
import { audit } from "./0005-audit.ts";
import { snapshotCatalogue } from "./0006-snapshot-catalogue.ts";
import { leanAppend } from "./0007-lean-append.ts";
import { groupAppend } from "./0008-group-append.ts";
import { hosts } from "./0009-hosts.ts";

/** A migration and the name it is recorded under (zero-padded, so names sort in order). */
export interface NamedMigration {
  readonly name: string;
  readonly migration: Migration;
}

/**
 * All migrations, oldest first. Append new ones at the end; never rename or reorder a released one.
 *
 * @example
 * ```ts
 * const last = migrations.at(-1)?.name;
 * ```
 */
export const migrations: readonly NamedMigration[] = [
  { name: "0001-initial", migration: initial },
  { name: "0002-append-function", migration: appendFunction },
  { name: "0003-projections", migration: projections },
  { name: "0004-leases", migration: leases },
  { name: "0005-audit", migration: audit },
  { name: "0006-snapshot-catalogue", migration: snapshotCatalogue },
  { name: "0007-lean-append", migration: leanAppend },
  { name: "0008-group-append", migration: groupAppend },
  { name: "0009-hosts", migration: hosts },
];
