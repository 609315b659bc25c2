/**
 * Subscription checkpoints (src/events/checkpoint.ts): their order (transaction id first, as a
 * number past 2^53, then position), what counts as one, and the text form a caller stores and
 * hands back.
 */
import { describe, expect, it } from "vitest";
import {
  type Checkpoint,
  compareCheckpoints,
  formatCheckpoint,
  isCheckpoint,
  parseCheckpoint,
} from "../../src/events/checkpoint.ts";
import { errorOf } from "../support/failure.ts";

const cp = (transactionId: string, position: number): Checkpoint => ({ transactionId, position });

describe("compareCheckpoints", () => {
  it("orders by transaction id, then by position", () => {
    expect(compareCheckpoints(cp("10", 5), cp("11", 1))).toBe(-1);
    expect(compareCheckpoints(cp("11", 1), cp("10", 5))).toBe(1);
    expect(compareCheckpoints(cp("10", 3), cp("10", 5))).toBeLessThan(0);
    expect(compareCheckpoints(cp("10", 5), cp("10", 3))).toBeGreaterThan(0);
    expect(compareCheckpoints(cp("10", 5), cp("10", 5))).toBe(0);
  });

  it("compares transaction ids as numbers, exactly past 2^53 and not as text", () => {
    expect(compareCheckpoints(cp("9007199254740993", 0), cp("9007199254740992", 9))).toBe(1);
    expect(compareCheckpoints(cp("9", 0), cp("10", 0))).toBe(-1);
  });
});

describe("isCheckpoint", () => {
  it("a decimal transaction id of 1 to 20 digits and a safe, non-negative integer position", () => {
    expect(isCheckpoint(cp("0", 0))).toBe(true);
    expect(isCheckpoint(cp("18446744073709551615", Number.MAX_SAFE_INTEGER))).toBe(true);
  });

  it.each([
    ["null", null],
    ["a string", "1:2"],
    ["a numeric transaction id", { transactionId: 1, position: 2 }],
    ["an empty transaction id", cp("", 1)],
    ["a transaction id with a sign", cp("-1", 1)],
    ["a transaction id with text around it", cp("x12", 1)],
    ["a transaction id ending in text", cp("12x", 1)],
    ["21 digits", cp("123456789012345678901", 1)],
    ["a position given as text", { transactionId: "1", position: "2" }],
    ["a fractional position", cp("1", 1.5)],
    ["an unsafe position", cp("1", 2 ** 53)],
    ["a negative position", cp("1", -1)],
  ])("not %s", (_, value) => {
    expect(isCheckpoint(value)).toBe(false);
  });
});

describe("formatCheckpoint and parseCheckpoint", () => {
  it("'<transactionId>:<position>', read back the same (surrounding blanks ignored)", () => {
    const c = cp("18446744073709551615", 4242);
    expect(formatCheckpoint(c)).toBe("18446744073709551615:4242");
    expect(parseCheckpoint(formatCheckpoint(c))).toEqual(c);
    expect(parseCheckpoint("  7:0\n")).toEqual(cp("7", 0));
  });

  it.each([
    "",
    "7",
    "7:",
    ":7",
    "7:8:9",
    "a:1",
    "1:b",
    "x7:1",
    "7:1x",
    "123456789012345678901:1",
    "1:12345678901234567",
    "1:9007199254740993",
  ])("refuses %j with INVALID_ARGUMENT, saying the form", (text) => {
    const error = errorOf(() => parseCheckpoint(text));
    expect(error).toBeMaqetError("INVALID_ARGUMENT", { checkpoint: text });
    expect(error.message).toBe(
      `Invalid checkpoint '${text}': expected "<transactionId>:<position>", as formatCheckpoint() writes it.`,
    );
  });
});
