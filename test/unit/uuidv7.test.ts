/** uuidv7 (src/events/uuidv7.ts): RFC 9562 layout, time-ordered, unique. */
import { describe, expect, it } from "vitest";
import { uuidv7 } from "../../src/events/uuidv7.ts";

describe("uuidv7", () => {
  it("has version 7, variant 10, and the time in its first 48 bits", () => {
    const now = Date.UTC(2026, 11, 6, 20, 30);
    const id = uuidv7(now);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16)).toBe(now);
  });

  it("sorts ids of later milliseconds after earlier ones, and never repeats", () => {
    const ids = Array.from({ length: 1000 }, (_, i) => uuidv7(1_700_000_000_000 + i));
    expect([...ids].sort()).toEqual(ids);
    const same = Array.from({ length: 10_000 }, () => uuidv7(1_700_000_000_000));
    expect(new Set(same).size).toBe(same.length);
  });
});
