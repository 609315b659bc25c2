/**
 * The in-memory VM directory of a process that is its store's only writer
 * (src/actors/cached-vm-directory.ts): one read until a vm.* event is appended; a read that
 * overlapped an append is not kept; a name it does not know is asked of the inner directory.
 */
import { Subject } from "rxjs";
import { describe, expect, it } from "vitest";
import { cachedVmDirectory } from "../../src/actors/cached-vm-directory.ts";
import type { VmDirectory } from "../../src/actors/vm-directory.ts";
import type { VmView } from "../../src/actors/vm-view.ts";
import type { StoredEvent } from "../../src/events/envelope.ts";

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
});
