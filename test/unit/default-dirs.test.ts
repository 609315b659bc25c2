import { homedir } from "node:os";
import { describe, expect, it } from "vitest";
import { defaultDataDir, defaultRuntimeRoot } from "../../src/adapters/default-dirs.ts";

describe("defaultRuntimeRoot", () => {
  it("uses $XDG_RUNTIME_DIR/maqet", () => {
    expect(defaultRuntimeRoot({ XDG_RUNTIME_DIR: "/run/user/1000" }, 1000)).toBe("/run/user/1000/maqet");
  });

  it("falls back to /tmp/maqet-<uid> when XDG_RUNTIME_DIR is unset, empty or relative", () => {
    for (const XDG_RUNTIME_DIR of [undefined, "", "run/user/1000"]) {
      expect(defaultRuntimeRoot({ XDG_RUNTIME_DIR }, 1000)).toBe("/tmp/maqet-1000");
    }
  });

  it("uses this process's uid by default", () => {
    expect(defaultRuntimeRoot({})).toBe(`/tmp/maqet-${process.getuid?.()}`);
  });
});

describe("defaultDataDir", () => {
  it("uses $XDG_DATA_HOME/maqet", () => {
    expect(defaultDataDir({ XDG_DATA_HOME: "/srv/data", HOME: "/home/ada" })).toBe("/srv/data/maqet");
  });

  it("falls back to ~/.local/share/maqet, ignoring a relative XDG_DATA_HOME", () => {
    expect(defaultDataDir({ HOME: "/home/ada" })).toBe("/home/ada/.local/share/maqet");
    expect(defaultDataDir({ XDG_DATA_HOME: "data", HOME: "/home/ada" })).toBe("/home/ada/.local/share/maqet");
  });

  it("uses the account's home directory when HOME is unset", () => {
    expect(defaultDataDir({})).toBe(`${homedir()}/.local/share/maqet`);
  });
});
