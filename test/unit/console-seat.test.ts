/**
 * The serial console's one writer seat: the decision (free, busy, forced, stale) and the lock
 * file that carries it between processes (exclusive creation, atomic takeover, release only of
 * one's own record, a watcher that notices a takeover).
 */
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ConsoleHolder, decideSeat, describeHolder } from "../../src/actors/console-seat.ts";
import {
  acquireConsoleLock,
  holderAlive,
  readConsoleLock,
  releaseConsoleLock,
  watchConsoleLock,
} from "../../src/adapters/console-lock.ts";
import { isMaqetError } from "../../src/errors/maqet-error.ts";
import { waitUntil } from "../support/poll.ts";

const holder = (session: string, over: Partial<ConsoleHolder> = {}): ConsoleHolder => ({
  session,
  user: "alice",
  uid: 1000,
  host: "lab1",
  pid: 4242,
  source: "cli",
  holderPid: 4242,
  holderHost: "lab1",
  since: "2026-12-07T00:10:00.000Z",
  qemuPid: 77,
  ...over,
});
const alive = () => true;
const dead = () => false;

describe("decideSeat", () => {
  const request = { force: false, host: "lab1", qemuPid: 77 };

  it("free when nobody holds it; busy when a live holder does", () => {
    expect(decideSeat(undefined, request, alive)).toEqual({ kind: "free" });
    expect(decideSeat(holder("a"), request, alive)).toEqual({ kind: "busy", holder: holder("a") });
  });

  it("--force takes a live holder's seat", () => {
    expect(decideSeat(holder("a"), { ...request, force: true }, alive)).toEqual({
      kind: "forced",
      previous: holder("a"),
    });
  });

  it("a dead holder's seat, or one from an earlier run of the VM, is stale: taken without --force", () => {
    expect(decideSeat(holder("a"), request, dead)).toEqual({ kind: "stale", previous: holder("a") });
    expect(decideSeat(holder("a", { qemuPid: 12 }), request, alive)).toMatchObject({ kind: "stale" });
  });

  it("a holder on another host cannot be probed: never stale by liveness", () => {
    expect(decideSeat(holder("a", { holderHost: "lab2" }), request, dead)).toMatchObject({ kind: "busy" });
  });

  it("names the holder: user, uid, pid, host, face", () => {
    expect(describeHolder(holder("a"))).toBe("alice (uid 1000, pid 4242 on lab1, via cli)");
  });
});

describe("console.lock", () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "maqet-console-lock-"));
    path = join(dir, "console.lock");
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const options = { force: false, host: "lab1", qemuPid: 77, vm: "web", isAlive: alive };

  it("the first writer takes it (0600, no temporary left); a second is refused with CONSOLE_BUSY naming the first", async () => {
    expect((await acquireConsoleLock(path, holder("a"), options)).decision).toEqual({ kind: "free" });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(["console.lock"]);
    const refused = await acquireConsoleLock(
      path,
      holder("b", { user: "bob", pid: 5151, holderPid: 5151 }),
      options,
    ).catch((e: unknown) => e);
    expect(isMaqetError(refused, "CONSOLE_BUSY")).toBe(true);
    expect((refused as Error).message).toBe(
      "VM 'web' serial console is held by alice (uid 1000, pid 4242 on lab1, via cli) since 2026-12-07T00:10:00.000Z. Attach read-only with --read-only, or take it over with --force.",
    );
    expect((refused as { details: { holder: { session: string } } }).details.holder.session).toBe("a");
    expect((await readConsoleLock(path)) as ConsoleHolder).toMatchObject({ session: "a" });
    expect(await readdir(dir)).toEqual(["console.lock"]);
  });

  it("--force replaces the record; the previous holder's watcher sees the takeover, its release leaves the new record", async () => {
    await acquireConsoleLock(path, holder("a"), options);
    const lost: Array<ConsoleHolder | undefined> = [];
    const stop = watchConsoleLock(path, "a", (by) => lost.push(by), 10);
    const taken = await acquireConsoleLock(path, holder("b", { user: "bob" }), { ...options, force: true });
    expect(taken.decision).toMatchObject({ kind: "forced", previous: { session: "a", user: "alice" } });
    await waitUntil(
      "the holder's watcher to see the takeover",
      () => lost.length,
      (n) => n > 0,
    );
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ session: "b", user: "bob" });
    stop();
    await releaseConsoleLock(path, "a");
    expect(await readConsoleLock(path)).toMatchObject({ session: "b" });
    await releaseConsoleLock(path, "b");
    expect(await readConsoleLock(path)).toBe("missing");
  });

  it("a dead holder's lock, and a damaged one, are taken over without --force", async () => {
    await acquireConsoleLock(path, holder("a"), options);
    const taken = await acquireConsoleLock(path, holder("b"), { ...options, isAlive: dead });
    expect(taken.decision).toMatchObject({ kind: "stale", previous: { session: "a" } });
    await writeFile(path, "{not json", { mode: 0o600 });
    expect(await readConsoleLock(path)).toBe("unreadable");
    expect((await acquireConsoleLock(path, holder("c"), options)).decision.kind).toBe("stale");
    expect(await readConsoleLock(path)).toMatchObject({ session: "c" });
  });

  it("the watcher stays quiet while the record is ours or gone", async () => {
    await acquireConsoleLock(path, holder("a"), options);
    let calls = 0;
    const stop = watchConsoleLock(path, "a", () => calls++, 5);
    // A watcher for another session, on the same file, fires: so the quiet one has really looked.
    let other = 0;
    const stopOther = watchConsoleLock(path, "z", () => other++, 5);
    await waitUntil(
      "the other session's watcher to fire",
      () => other,
      (n) => n > 0,
    );
    await releaseConsoleLock(path, "a");
    const stopLate = watchConsoleLock(path, "y", () => other++, 5);
    await new Promise((r) => setTimeout(r, 50));
    stop();
    stopOther();
    stopLate();
    expect(calls).toBe(0);
    expect(other).toBe(1);
  });

  it("holderAlive: this process is alive; a pid that started at another time is not the holder", () => {
    const me = holder("a", { holderPid: process.pid, holderStart: undefined });
    expect(holderAlive(me)).toBe(true);
    expect(holderAlive({ ...me, holderStart: "1" })).toBe(false);
    expect(holderAlive({ ...me, holderPid: 2 ** 22 + 12345 })).toBe(false);
  });
});
