// The bare cost a CLI call pays for the embedded store: open PGlite on a data directory (creating
// it if empty) and close it. No lock, no migrations, no maqet code. Usage: node pglite-open.mjs DIR
import { PGlite } from "@electric-sql/pglite";

const pglite = await PGlite.create({ dataDir: process.argv[2] });
await pglite.close();
