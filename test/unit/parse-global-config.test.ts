import { describe, expect, it } from "vitest";
import { parseGlobalConfig } from "../../src/config/parse-global-config.ts";
import { errorOf } from "../support/failure.ts";

const parse = (text: string) => parseGlobalConfig(text, { source: "config.yaml" });

describe("parseGlobalConfig", () => {
  it("reads YAML 1.2 (core schema): yes and no are strings, not booleans", () => {
    expect(parse("qmp:\n  deny: [yes, no]\n")).toEqual({ qmp: { deny: ["yes", "no"] } });
  });

  it("skips a byte-order mark", () => {
    expect(parse("\uFEFFqmp:\n  deny: [quit]\n")).toEqual({ qmp: { deny: ["quit"] } });
  });

  it("a file with only comments, or qmp: left empty, is no setting", () => {
    expect(parse("# nothing yet\n")).toStrictEqual({});
    expect(parse("qmp:\n")).toStrictEqual({});
  });

  it.each([
    ["a syntax error", "qmp: [\n"],
    ["a repeated key", "qmp: {}\nqmp: {}\n"],
    ["a custom tag", "qmp: !python/object {}\n"],
  ])("%s is CONFIG_INVALID naming the file", (_what, text) => {
    const error = errorOf(() => parse(text));
    expect(error).toBeMaqetError("CONFIG_INVALID");
    expect(error.message).toMatch(
      /^Invalid YAML in config\.yaml: .+\. Fix the YAML syntax \(maqet reads plain YAML 1\.2\)\.$/,
    );
    expect(error.details).toEqual({ source: "config.yaml" });
  });

  it("a document that is not a mapping is CONFIG_INVALID at the top", () => {
    for (const text of ["- qmp\n", "just words\n"]) {
      const error = errorOf(() => parse(text));
      expect(error).toBeMaqetError("CONFIG_INVALID");
      expect(error.message).toBe(
        'Invalid config: config.yaml must be a mapping (key: value lines), e.g. "qmp:\\n  deny: [quit]".',
      );
      expect(error.details).toEqual({ keyPath: "", source: "config.yaml" });
    }
  });

  it("an unknown key is CONFIG_INVALID naming it and the valid ones", () => {
    const error = errorOf(() => parse("qmp: {}\nqpm: {}\n"));
    expect(error).toBeMaqetError("CONFIG_INVALID");
    expect(error.message).toBe(
      "Invalid config: unknown key 'qpm' in config.yaml. Valid keys: qmp. Remove or rename it.",
    );
    expect(error.details).toEqual({ keyPath: "qpm", source: "config.yaml" });
  });

  it("the qmp: rules are checked with their key path", () => {
    const error = errorOf(() => parse("qmp:\n  deny: quit\n"));
    expect(error).toBeMaqetError("CONFIG_INVALID");
    expect(error.details.keyPath).toMatch(/^qmp/);
    expect(error.details.source).toBe("config.yaml");
  });
});
