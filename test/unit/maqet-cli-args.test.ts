import { describe, expect, it } from "vitest";
import { parseArgs } from "../../src/cli/parse-args.ts";

describe("MAQET's command lines parse as MAQET means them", () => {
  it("add: positional files and --vm-config (greedy, repeatable, older --config), overrides, --empty", () => {
    expect(parseArgs(["add", "a.yaml", "b.yaml", "--memory", "8G"]).input).toEqual({
      config: ["a.yaml", "b.yaml"],
      memory: "8G",
    });
    expect(parseArgs(["add", "--vm-config", "base.yaml", "custom.yaml", "--name", "web"]).input).toEqual({
      "vm-config": ["base.yaml", "custom.yaml"],
      name: "web",
    });
    expect(parseArgs(["add", "--config", "a.yaml", "--config", "b.yaml"]).input).toEqual({
      "vm-config": ["a.yaml", "b.yaml"],
    });
    expect(parseArgs(["add", "--name", "t", "--cpu", "2", "--enable-kvm", "--empty"]).input).toEqual({
      name: "t",
      cpu: 2,
      "enable-kvm": true,
      empty: true,
    });
  });

  it("snapshot in MAQET's order beside maqet's", () => {
    const maqetOrder = parseArgs(["snapshot", "myvm", "create", "hdd", "backup1", "--overwrite"]);
    expect(maqetOrder.command?.name).toBe("snapshot");
    expect(maqetOrder.input).toEqual({ vm: "myvm", action: "create", drive: "hdd", tag: "backup1", overwrite: true });
    expect(parseArgs(["snapshot", "myvm", "list", "hdd"]).input).toEqual({ vm: "myvm", action: "list", drive: "hdd" });
    expect(parseArgs(["snapshot", "create", "web", "s1"]).command?.name).toBe("snapshot create");
  });

  it("qmp pause/resume/run, storage, cleanup, ls --status, rm --all, start --detach, delete", () => {
    expect(parseArgs(["qmp", "pause", "web"]).command?.name).toBe("qmp pause");
    expect(parseArgs(["qmp", "run", "web", "query-status"]).input).toEqual({ vm: "web", command: "query-status" });
    expect(parseArgs(["qmp", "web", "query-status"]).command?.name).toBe("qmp");
    expect(parseArgs(["storage", "attach", "r", "/d.qcow2", "--vm-config", "r.yaml"]).input).toEqual({
      name: "r",
      path: "/d.qcow2",
      "vm-config": ["r.yaml"],
    });
    expect(parseArgs(["cleanup", "--dry-run"]).input).toEqual({ "dry-run": true });
    expect(parseArgs(["ls", "--status", "running"]).input).toEqual({ status: "running" });
    expect(parseArgs(["rm", "--all", "--force"]).input).toEqual({ all: true, force: true });
    expect(parseArgs(["start", "web", "--detach"]).input).toEqual({ vm: "web", detach: true });
    expect(parseArgs(["delete", "web"]).command?.name).toBe("rm");
  });

  it("global flags: -v/-vv/-vvv, --debug, --log-file, --format, --maqet-*-dir", () => {
    const g = parseArgs(["-vv", "--debug", "--log-file", "/tmp/m.log", "--format", "yaml", "ls"]).global;
    expect(g).toMatchObject({ verbosity: 2, debug: true, logFile: "/tmp/m.log", format: "yaml", json: false });
    expect(parseArgs(["-vvv", "ls"]).global.verbosity).toBe(3);
    expect(parseArgs(["--format", "json", "status", "web"]).global.json).toBe(true);
    expect(() => parseArgs(["--format", "xml", "ls"])).toThrow(
      /--format must be one of auto, json, yaml, plain, table/,
    );
    const dirs = parseArgs([
      "--maqet-data-dir",
      "/d",
      "--maqet-runtime-dir",
      "/r",
      "--maqet-config-dir",
      "/c",
      "ls",
    ]).global;
    expect(dirs).toMatchObject({ dataDir: "/d", runtimeDir: "/r", configDir: "/c" });
    // A command's own --format wins over MAQET's global one.
    expect(parseArgs(["audit", "--format", "jsonl"]).input).toEqual({ format: "jsonl" });
  });
});
