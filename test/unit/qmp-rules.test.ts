import { describe, expect, it } from "vitest";
import { matchQmpRule, parseQmpRules } from "../../src/config/qmp-rules.ts";
import { errorOf } from "../support/failure.ts";

const at = { keyPath: "qmp", source: "web.yaml" };

describe("parseQmpRules", () => {
  it("no section, or an empty list, is no rule", () => {
    expect(parseQmpRules(undefined, at)).toBeUndefined();
    expect(parseQmpRules(null, at)).toBeUndefined();
    expect(parseQmpRules({ allow: null, deny: null }, at)).toEqual({});
  });

  it("takes names, prefixes, * and every tier, as written", () => {
    const allow = ["query-status", "query-*", "*", "@safe", "@privileged", "@memory-dump", "@dangerous", "x_y-1"];
    expect(parseQmpRules({ allow, deny: ["quit"] }, at)).toEqual({ allow, deny: ["quit"] });
  });

  it("a value that is not a mapping: the message says what is expected and where to fix it", () => {
    const error = errorOf(() => parseQmpRules("quit", at));
    expect(error).toBeMaqetError("CONFIG_INVALID");
    expect(error.message).toBe(
      `Invalid config: 'qmp' must be a mapping with allow: and/or deny: lists of QMP command names (got "quit"). Fix the value in web.yaml.`,
    );
    expect(error.details).toEqual({ keyPath: "qmp", source: "web.yaml", value: "quit" });
  });

  it("a long value is shown cut at 57 characters", () => {
    const long = "q".repeat(70);
    const error = errorOf(() => parseQmpRules({ deny: long }, at));
    expect(error.message).toContain(`(got "${"q".repeat(56)}...)`);
    const fits = "q".repeat(58); // 60 characters with its quotes: shown whole
    expect(errorOf(() => parseQmpRules({ deny: fits }, at)).message).toContain(`(got "${fits}")`);
  });

  it("a bad entry names its index and the forms an entry may take", () => {
    for (const entry of ["Query", "@nope", "-quit", "query*x", 7]) {
      const error = errorOf(() => parseQmpRules({ deny: ["quit", entry] }, at));
      expect(error).toBeMaqetError("CONFIG_INVALID", { keyPath: "qmp.deny[1]", value: entry });
      expect(error.message).toContain(
        "must be a QMP command name, a prefix ending in * (query-*), * or a tier (@safe, @privileged, @memory-dump, @dangerous)",
      );
    }
  });

  it("an unknown key names its full path and the valid keys", () => {
    const error = errorOf(() => parseQmpRules({ allow: [], permit: [] }, at));
    expect(error.message).toBe(
      "Invalid config: unknown key 'qmp.permit' in web.yaml. Valid keys: allow, deny. Remove or rename it.",
    );
    expect(error.details).toEqual({ keyPath: "qmp.permit", source: "web.yaml" });
  });
});

describe("matchQmpRule", () => {
  it("returns the first entry that matches: *, a tier, a prefix or the exact name", () => {
    expect(matchQmpRule(["quit", "*"], "stop", "privileged")).toBe("*");
    expect(matchQmpRule(["@safe", "@privileged"], "stop", "privileged")).toBe("@privileged");
    expect(matchQmpRule(["query-*", "query-status"], "query-status", "safe")).toBe("query-*");
    expect(matchQmpRule(["query-status"], "query-status", "safe")).toBe("query-status");
  });

  it("matches nothing else", () => {
    expect(matchQmpRule(["query-*"], "quit", "dangerous")).toBeUndefined();
    expect(matchQmpRule(["@safe"], "quit", "dangerous")).toBeUndefined();
    expect(matchQmpRule(["query-status"], "query-status-x", "safe")).toBeUndefined();
    expect(matchQmpRule(["query"], "query-status", "safe")).toBeUndefined();
    expect(matchQmpRule([], "query-status", "safe")).toBeUndefined();
  });
});
