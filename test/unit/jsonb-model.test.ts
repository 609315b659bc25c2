/**
 * The model's jsonb rules (test/support/jsonb.ts), pinned to what PostgreSQL does: key order by
 * UTF-8 length then bytes, last of duplicate keys, equality ignoring key order, loud refusal of
 * what jsonb refuses. (The property test compares the same rules against the real store.)
 */
import { describe, expect, it } from "vitest";
import { compareJsonbKeys, jsonbEqual, toJsonb } from "../support/jsonb.ts";
import { MemoryEventStore } from "../support/memory-event-store.ts";

describe("jsonb semantics of the model", () => {
  it("orders keys by UTF-8 length, then bytewise (not by JavaScript length or UTF-16 units)", () => {
    expect(["b", "ab", "é", "a", "\u{1F600}", "\uff61", "aaa"].sort(compareJsonbKeys)).toEqual([
      "a",
      "b",
      "ab", // 2 bytes, 0x61 …
      "é", // 2 bytes, 0xc3 0xa9: after "ab" although shorter in JavaScript
      "aaa",
      "\uff61", // 3 bytes, 0xef …
      "\u{1F600}", // 4 bytes
    ]);
    expect(JSON.stringify(toJsonb({ zz: 1, b: { yy: 2, x: 3 }, a: [{ bb: 1, c: 2 }] }))).toBe(
      '{"a":[{"c":2,"bb":1}],"b":{"x":3,"yy":2},"zz":1}',
    );
  });

  it("drops undefined, turns dates into strings, keeps a __proto__ key as data", () => {
    expect(toJsonb({ a: undefined, d: new Date("2026-01-01T00:00:00Z") })).toEqual({ d: "2026-01-01T00:00:00.000Z" });
    const parsed = JSON.parse('{"__proto__":{"x":1},"a":2}');
    const stored = toJsonb(parsed) as Record<string, unknown>;
    expect(Object.keys(stored)).toEqual(["a", "__proto__"]);
    expect(Object.getPrototypeOf(stored)).toBe(Object.prototype);
    expect(toJsonb(JSON.parse('{"a":1,"b":2,"a":3}'))).toEqual({ a: 3, b: 2 });
  });

  it("compares as jsonb does: key order ignored, array order kept", () => {
    expect(jsonbEqual({ a: 1, b: [1, 2] }, { b: [1, 2], a: 1 })).toBe(true);
    expect(jsonbEqual({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
  });

  it("refuses what jsonb refuses, loudly", () => {
    expect(() => toJsonb({ s: "a\u0000b" })).toThrow("$.s holds a NUL character");
    expect(() => toJsonb(JSON.parse('{"\\ud800":1}'))).toThrow("lone surrogate");
  });

  it("reads back in jsonb's order, answers append with what was sent, and accepts a reordered retry", async () => {
    const store = new MemoryEventStore();
    const id = crypto.randomUUID();
    const sent = { zz: 1, a: 2 };
    const appended = await store.append("vm-1", [{ id, type: "t", schemaVersion: 1, data: sent }]);
    expect(JSON.stringify(appended.events[0]!.data)).toBe('{"zz":1,"a":2}');
    expect(JSON.stringify((await store.readStream("vm-1"))[0]!.data)).toBe('{"a":2,"zz":1}');
    const retried = await store.append("vm-1", [{ id, type: "t", schemaVersion: 1, data: { a: 2, zz: 1 } }]);
    expect(retried.events.map((e) => e.globalPosition)).toEqual([1]);
    await expect(
      store.append("vm-1", [{ id, type: "t", schemaVersion: 1, data: { a: 2, zz: 9 } }]),
    ).rejects.toBeMaqetError("EVENT_ID_CONFLICT");
  });
});
