/**
 * The in-memory VM directory of a process that is its store's only writer
 * (src/actors/cached-vm-directory.ts): one read, then each vm.* event appended folded into its
 * VM's view (the projection's fold); a new VM or an event out of order reads again; a read that
 * overlapped an append is not kept; a name it does not know is asked of the inner directory.
 */
import { Subject } from "rxjs";
import { describe, expect, it } from "vitest";
import { cachedVmDirectory } from "../../src/actors/cached-vm-directory.ts";
import type { VmDirectory } from "../../src/actors/vm-directory.ts";
import type { VmView } from "../../src/actors/vm-view.ts";
import type { StoredEvent } from "../../src/events/envelope.ts";
import { ev, startRequested, storedFrom, viewOf } from "../support/vm-chart.ts";

const view = (name: string, vmId: string, status = "stopped") => ({ name, vmId, status }) as unknown as VmView;
const appended = (streamId: string) => ({ streamId }) as StoredEvent;

function fakeInner(views: VmView[]) {
  const calls = { list: 0, find: [] as string[] };
  let gate: Promise<void> | undefined;
  const inner: VmDirectory = {
    namesClaimedByStore: true,
    list: async () => {
      calls.list++;
      const snapshot = [...views];
      await gate;
      return snapshot;
    },
    find: async (nameOrId) => {
      calls.find.push(nameOrId);
      return undefined;
    },
  };
  return { inner, calls, hold: (p: Promise<void>) => (gate = p), views };
}

describe("cachedVmDirectory", () => {
  it("reads once until a vm event is appended; other categories change nothing", async () => {
    const fake = fakeInner([view("web", "1"), view("old", "2", "removed")]);
    const appended$ = new Subject<StoredEvent>();
    const dir = cachedVmDirectory(fake.inner, appended$);
    expect(dir.namesClaimedByStore).toBe(true);
    expect((await dir.list()).map((v) => v.name)).toEqual(["web"]);
    expect((await dir.list({ includeRemoved: true })).map((v) => v.name)).toEqual(["web", "old"]);
    expect((await dir.find("web"))?.vmId).toBe("1");
    expect(fake.calls.list).toBe(1);
    appended$.next(appended("audit-x"));
    await dir.list();
    expect(fake.calls.list).toBe(1);
    fake.views.push(view("db", "3"));
    appended$.next(appended("vm-3"));
    expect((await dir.list()).map((v) => v.name)).toEqual(["web", "db"]);
    expect(fake.calls.list).toBe(2);
  });

  it("finds by name before id, skips removed VMs, and asks the inner directory for a name it lacks", async () => {
    const fake = fakeInner([view("a", "b"), view("b", "c"), view("gone", "g", "removed")]);
    const dir = cachedVmDirectory(fake.inner, new Subject());
    expect((await dir.find("b"))?.name).toBe("b");
    expect((await dir.find("c"))?.name).toBe("b");
    expect(await dir.find("gone")).toBeUndefined();
    expect(fake.calls.find).toEqual(["gone"]);
  });

  it("a read that overlapped an append is not kept", async () => {
    const fake = fakeInner([view("web", "1")]);
    const appended$ = new Subject<StoredEvent>();
    const dir = cachedVmDirectory(fake.inner, appended$);
    let release!: () => void;
    fake.hold(new Promise<void>((r) => (release = r)));
    const first = dir.list();
    fake.views.push(view("db", "2"));
    appended$.next(appended("vm-2"));
    release();
    expect((await first).map((v) => v.name)).toEqual(["web"]); // what that read saw
    fake.hold(Promise.resolve());
    expect((await dir.list()).map((v) => v.name)).toEqual(["web", "db"]);
    expect(fake.calls.list).toBe(2);
  });

  it("folds an appended event into its VM's view, with no read, as the projection would", async () => {
    const web = viewOf();
    const fake = fakeInner([web, view("db", "2")]);
    const appended$ = new Subject<StoredEvent>();
    const dir = cachedVmDirectory(fake.inner, appended$);
    await dir.list();
    const [requested, paused] = storedFrom([startRequested, ev("vm.paused", { detail: "user" })], 1);
    appended$.next(requested!);
    const after = await dir.list();
    expect(after[0]).toEqual(viewOf(startRequested)); // the projection's row after the same two events
    expect(after[0]!.status).toBe("starting");
    expect(after[1]!.name).toBe("db");
    expect(await dir.find("web")).toEqual(viewOf(startRequested));
    // Already in the list (a read that finished before its notice): nothing changes.
    appended$.next(requested!);
    expect((await dir.list())[0]!.version).toBe(1);
    expect(fake.calls.list).toBe(1);
    // One missed (version 2 never seen): read again.
    appended$.next({ ...paused!, streamVersion: 3 });
    await dir.list();
    expect(fake.calls.list).toBe(2);
  });

  it("reads again for a VM it does not hold (a new one)", async () => {
    const fake = fakeInner([viewOf()]);
    const appended$ = new Subject<StoredEvent>();
    const dir = cachedVmDirectory(fake.inner, appended$);
    await dir.list();
    appended$.next({ ...storedFrom([startRequested], 0)[0]!, streamId: "vm-other" });
    await dir.list();
    expect(fake.calls.list).toBe(2);
  });
});
