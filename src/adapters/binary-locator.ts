/**
 * Finds `qemu-img` and `qemu-system-*` once per locator: concurrent callers share one lookup
 * promise, later callers get the cached path. No shell and no `which`: PATH entries are probed
 * with stat + access(X_OK).
 *
 * Resolution order for a program:
 * 1. `overrides[program]`;
 * 2. `MAQET_QEMU_IMG` for `qemu-img`, `MAQET_QEMU_SYSTEM` for any bare `qemu-system-*` name;
 * 3. a name containing `/` is a path, checked as is (relative → against the current directory);
 * 4. otherwise the first executable regular file named so in `PATH` (empty entries skipped: POSIX
 *    reads them as the current directory, which we never search).
 *
 * A failed lookup is not cached, so installing QEMU fixes a long-running process without a restart.
 *
 * @example
 * ```ts
 * const locator = createBinaryLocator({ env: process.env });
 * await locator.locate("qemu-img"); // "/usr/bin/qemu-img"
 * ```
 */
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { delimiter, resolve } from "node:path";
import type { BinaryLocator } from "../actors/ports.ts";
import { MaqetError } from "../errors/maqet-error.ts";

export interface BinaryLocatorOptions {
  /** Reads PATH, MAQET_QEMU_IMG and MAQET_QEMU_SYSTEM from here (default: `process.env`). */
  env?: Record<string, string | undefined>;
  /** Program name → path, checked before anything else. */
  overrides?: Record<string, string>;
  /** Probe used for every candidate (injectable so tests can count probes). */
  isExecutable?: (path: string) => Promise<boolean>;
}

/** Where a program was found, and how (for `maqet doctor`). */
export interface BinaryResolution {
  program: string;
  path: string;
  /** `override`, `env:MAQET_QEMU_IMG`, `env:MAQET_QEMU_SYSTEM`, `path` (an explicit path) or `PATH`. */
  how: "override" | "env:MAQET_QEMU_IMG" | "env:MAQET_QEMU_SYSTEM" | "path" | "PATH";
}

export interface CountingBinaryLocator extends BinaryLocator {
  /** How many lookups actually ran (cache hits and shared in-flight lookups do not count). */
  readonly lookups: number;
  /** How many calls were answered from the cache (or joined a lookup already in flight). */
  readonly hits: number;
  /** Like `locate`, with how the path was found; shares the same cache (no second lookup). */
  resolve(program: string): Promise<BinaryResolution>;
}

/**
 * Creates a locator with its own cache.
 *
 * @example
 * ```ts
 * const locator = createBinaryLocator({ env: { PATH: "/usr/bin" }, overrides: { "qemu-img": "/opt/q/qemu-img" } });
 * ```
 */
export function createBinaryLocator(options: BinaryLocatorOptions = {}): CountingBinaryLocator {
  const env = options.env ?? process.env;
  const overrides = options.overrides ?? {};
  const isExecutable = options.isExecutable ?? isExecutableFile;
  const cache = new Map<string, Promise<BinaryResolution>>();
  let lookups = 0;
  let hits = 0;

  const lookup = async (program: string): Promise<BinaryResolution> => {
    lookups += 1;
    processTotals.lookups += 1;
    if (program === "" || program.includes("\0")) {
      throw new MaqetError(
        "INVALID_ARGUMENT",
        `Invalid program name ${JSON.stringify(program)}: expected a name like qemu-img or a path.`,
      );
    }
    const configured = configuredPath(program, overrides, env);
    if (configured !== undefined) {
      const path = resolve(configured.path);
      if (await isExecutable(path)) return { program, path, how: configured.how };
      throw new MaqetError(
        "BINARY_NOT_FOUND",
        `${program} not found: ${path} (from ${configured.from}) is missing or not executable. Fix ${configured.from}, or unset it to search PATH.`,
        { details: { program, path, from: configured.from } },
      );
    }
    if (program.includes("/")) {
      const path = resolve(program);
      if (await isExecutable(path)) return { program, path, how: "path" };
      throw new MaqetError(
        "BINARY_NOT_FOUND",
        `QEMU binary not found: ${path} is missing or not executable. Install QEMU, fix the path (binary: in the VM config), or chmod +x it.`,
        { details: { program, path } },
      );
    }
    const searchPath = env.PATH ?? "";
    for (const dir of searchPath.split(delimiter)) {
      if (dir === "") continue;
      const candidate = resolve(dir, program);
      if (await isExecutable(candidate)) return { program, path: candidate, how: "PATH" };
    }
    throw new MaqetError(
      "BINARY_NOT_FOUND",
      `${program} not found on PATH (${searchPath || "empty"}). ${installHint(program)}`,
      { details: { program, searchPath } },
    );
  };

  const resolveCached = (program: string): Promise<BinaryResolution> => {
    let pending = cache.get(program);
    if (pending !== undefined) {
      hits += 1;
      processTotals.hits += 1;
    }
    if (pending === undefined) {
      pending = lookup(program);
      cache.set(program, pending);
      // Forget failures once settled, so a later call looks again.
      pending.catch(() => {
        if (cache.get(program) === pending) cache.delete(program);
      });
    }
    return pending;
  };

  return {
    get lookups() {
      return lookups;
    },
    get hits() {
      return hits;
    },
    locate: (program) => resolveCached(program).then((found) => found.path),
    resolve: resolveCached,
  };
}

/** Lookups and cache hits of every locator in this process (what `maqet stats` reports). */
const processTotals = { lookups: 0, hits: 0 };

/**
 * Binary-cache figures of this process: lookups that ran and calls answered from a cache, summed
 * over every locator created here. Per process by nature: each process has its own caches.
 *
 * @example
 * ```ts
 * binaryCacheStats(); // { lookups: 2, hits: 14 }
 * ```
 */
export function binaryCacheStats(): { lookups: number; hits: number } {
  return { ...processTotals };
}

let shared: CountingBinaryLocator | undefined;

/**
 * The process-wide locator for `process.env` (read once, on first use). Use it unless you pass a
 * custom environment, so the whole process looks each program up once.
 *
 * @example
 * ```ts
 * const qemuImg = await sharedBinaryLocator().locate("qemu-img");
 * ```
 */
export function sharedBinaryLocator(): CountingBinaryLocator {
  shared ??= createBinaryLocator({ env: { ...process.env } });
  return shared;
}

/**
 * The install command to suggest for a missing QEMU program (Debian/Ubuntu, then Fedora).
 *
 * @example
 * ```ts
 * installHint("qemu-img"); // "Install it: apt-get install -y --no-install-recommends qemu-utils (Debian/Ubuntu) or dnf install qemu-img (Fedora)."
 * ```
 */
export function installHint(program: string): string {
  const packages = packagesFor(program);
  if (packages === undefined) return "Install it, or give its full path.";
  return `Install it: apt-get install -y --no-install-recommends ${packages.debian} (Debian/Ubuntu) or dnf install ${packages.fedora} (Fedora).`;
}

function packagesFor(program: string): { debian: string; fedora: string } | undefined {
  if (program === "qemu-img") return { debian: "qemu-utils", fedora: "qemu-img" };
  const arch = /^qemu-system-(.+)$/.exec(program)?.[1];
  if (arch === undefined) return undefined;
  if (arch === "x86_64" || arch === "i386") return { debian: "qemu-system-x86", fedora: "qemu-system-x86" };
  if (arch === "aarch64") return { debian: "qemu-system-arm", fedora: "qemu-system-aarch64" };
  if (arch === "arm") return { debian: "qemu-system-arm", fedora: "qemu-system-arm" };
  return { debian: "qemu-system", fedora: `qemu-system-${arch}` };
}

function configuredPath(
  program: string,
  overrides: Record<string, string>,
  env: Record<string, string | undefined>,
): { path: string; from: string; how: BinaryResolution["how"] } | undefined {
  const override = overrides[program];
  if (override) return { path: override, from: `the override for ${program}`, how: "override" };
  if (program === "qemu-img" && env.MAQET_QEMU_IMG) {
    return { path: env.MAQET_QEMU_IMG, from: "MAQET_QEMU_IMG", how: "env:MAQET_QEMU_IMG" };
  }
  if (program.startsWith("qemu-system-") && env.MAQET_QEMU_SYSTEM) {
    return { path: env.MAQET_QEMU_SYSTEM, from: "MAQET_QEMU_SYSTEM", how: "env:MAQET_QEMU_SYSTEM" };
  }
  return undefined;
}

/** A regular file (directories pass access X_OK too) that this user may execute. */
async function isExecutableFile(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const byEnvironment = new Map<string, CountingBinaryLocator>();

/**
 * The process-wide locator for an environment: every maqet instance (and every VM and disk in
 * it) with the same PATH and overrides shares one cache, so each program is looked up once per
 * process however many callers ask.
 *
 * @example
 * ```ts
 * const locator = locatorForEnv(process.env);
 * ```
 */
export function locatorForEnv(env: Record<string, string | undefined>): CountingBinaryLocator {
  const key = JSON.stringify([env.PATH ?? null, env.MAQET_QEMU_IMG ?? null, env.MAQET_QEMU_SYSTEM ?? null]);
  let locator = byEnvironment.get(key);
  if (locator === undefined) {
    locator = createBinaryLocator({
      env: { PATH: env.PATH, MAQET_QEMU_IMG: env.MAQET_QEMU_IMG, MAQET_QEMU_SYSTEM: env.MAQET_QEMU_SYSTEM },
    });
    byEnvironment.set(key, locator);
  }
  return locator;
}
