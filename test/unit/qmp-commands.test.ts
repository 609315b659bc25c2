import { describe, expect, it } from "vitest";
import { textToChords } from "../../src/actors/qmp-keys.ts";
import { parseKeyValues } from "../../src/api/commands/qmp-commands.ts";
import { parseArgs } from "../../src/cli/parse-args.ts";

describe("qmp command line", () => {
  it("helpers win as two-word commands; `--` before the second word means raw QMP on that VM", () => {
    const keys = parseArgs(["qmp", "keys", "web", "ctrl", "alt", "delete", "--hold-time", "50"]);
    expect(keys.command?.name).toBe("qmp keys");
    expect(keys.input).toEqual({ vm: "web", keys: ["ctrl", "alt", "delete"], "hold-time": 50 });
    const raw = parseArgs(["qmp", "--", "keys", "query-status"]);
    expect(raw.command?.name).toBe("qmp");
    expect(raw.input).toEqual({ vm: "keys", command: "query-status" });
    const id = parseArgs(["qmp", "web", "screendump", "filename=/tmp/a.ppm", "--allow-dangerous"]);
    expect(id.command?.name).toBe("qmp");
    expect(id.input).toMatchObject({ vm: "web", command: "screendump", arguments: ["filename=/tmp/a.ppm"] });
    expect(id.input["allow-dangerous"]).toBe(true);
    const type = parseArgs(["qmp", "type", "web", "--", "-rf"]);
    expect(type.input).toEqual({ vm: "web", text: "-rf" });
    const add = parseArgs(["qmp", "device-add", "web", "usb-kbd", "kbd1", "bus=xhci.0"]);
    expect(add.input).toEqual({ vm: "web", driver: "usb-kbd", id: "kbd1", props: ["bus=xhci.0"] });
  });

  it("key=value is a string, key:=json a JSON value", () => {
    expect(parseKeyValues(["filename=/tmp/a=b.ppm", "size:=4096", "on:=true", 'id:="7"', "empty="])).toEqual({
      filename: "/tmp/a=b.ppm",
      size: 4096,
      on: true,
      id: "7",
      empty: "",
    });
    expect(() => parseKeyValues(["novalue"])).toThrow(/key=value/);
    expect(() => parseKeyValues(["=x"])).toThrow(/key=value/);
    expect(() => parseKeyValues([":=1"])).toThrow(/key=value/);
    expect(() => parseKeyValues(["n:=nope"])).toThrow(/Invalid JSON for 'n:='/);
    expect(() => parseKeyValues(["a=1", "a=2"])).toThrow(/twice/);
  });

  it("type maps the whole printable ASCII range and CR LF once", () => {
    let printable = "";
    for (let c = 0x20; c < 0x7f; c++) printable += String.fromCharCode(c);
    expect(textToChords(printable)).toHaveLength(95);
    expect(textToChords("a\r\nb")).toEqual([["a"], ["ret"], ["b"]]);
    expect(() => textToChords("\u0007")).toThrow(/U\+0007/);
    expect(() => textToChords("")).toThrow(/empty/);
  });
});
