/**
 * The embedded store's snapshot, migrate and projection crash points (the others, and the
 * registry checks, are in crash-points.qemu.test.ts; two files so they run side by side).
 */
import { crashPointSuite, PGLITE_PARTS } from "../support/crash-point-suite.ts";

crashPointSuite("pglite", PGLITE_PARTS[1]);
