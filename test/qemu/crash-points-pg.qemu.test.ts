/**
 * Every named crash point on a PostgreSQL server (the embedded store's run, and the registry
 * checks, are in crash-points.qemu.test.ts; one file per dialect so the two run side by side).
 */
import { crashPointSuite } from "../support/crash-point-suite.ts";

crashPointSuite("pg");
