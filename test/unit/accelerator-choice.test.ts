import { describe, expect, it } from "vitest";
import { checkAcceleratorChoice, chosenAccelerator } from "../../src/config/accelerator-choice.ts";
import type { VmConfig } from "../../src/config/vm-config.ts";
import { errorOf } from "../support/failure.ts";

const base: VmConfig = { accel: "auto", args: [], arguments: [], storage: [] };
const words = (args: string[]) => chosenAccelerator({ ...base, args });

describe("chosenAccelerator: the words QEMU reads", () => {
  it("reads -accel in its key=value form as well as its bare form", () => {
    expect(words(["-accel", "accel=kvm,thread=multi"])).toEqual({
      accel: "kvm",
      source: "-accel accel=kvm,thread=multi in args",
    });
    expect(words(["--accel", "tcg"])).toEqual({ accel: "tcg", source: "-accel tcg in args" });
  });

  it("takes a bare -accel value only as the first part", () => {
    expect(words(["-accel", "thread=single,tcg"])).toBeUndefined();
    expect(words(["-accel", ",thread=single"])).toBeUndefined();
  });

  it("an option without its value (the last word) chooses nothing", () => {
    expect(words(["-accel"])).toBeUndefined();
    expect(words(["-m", "512", "-machine"])).toBeUndefined();
  });

  it("-machine without accel= goes on looking; the first choice found wins", () => {
    expect(words(["-machine", "q35", "-enable-kvm", "-accel", "tcg"])).toEqual({
      accel: "kvm",
      source: "enable-kvm in args",
    });
    expect(words(["-machine", "type=q35,accel=tcg", "-enable-kvm"])).toEqual({
      accel: "tcg",
      source: "-machine type=q35,accel=tcg in args",
    });
  });

  it("accel= counts only in -machine, -M and -accel values", () => {
    expect(words(["-name", "a,accel=kvm", "-object", "x,accel=tcg"])).toBeUndefined();
  });

  it("a word without a dash is a value, not an option", () => {
    expect(words(["-name", "enable-kvm"])).toBeUndefined();
  });

  it("machine: wins over the words", () => {
    expect(chosenAccelerator({ ...base, machine: "q35,accel=tcg", args: ["-enable-kvm"] })).toEqual({
      accel: "tcg",
      source: "machine: q35,accel=tcg",
    });
    expect(chosenAccelerator({ ...base, machine: "q35", args: ["-enable-kvm"] })?.source).toBe("enable-kvm in args");
  });
});

describe("checkAcceleratorChoice", () => {
  it("accel: auto takes what the words choose", () => {
    expect(checkAcceleratorChoice({ ...base, args: ["-enable-kvm"] }, "x.yaml")).toEqual({
      accel: "kvm",
      source: "enable-kvm in args",
    });
  });

  it("accel: written with no choice in the words is left to maqet", () => {
    expect(checkAcceleratorChoice({ ...base, accel: "tcg" }, "x.yaml")).toBeUndefined();
  });

  it("a contradiction is CONFIG_INVALID with both sides in its details", () => {
    const error = errorOf(() =>
      checkAcceleratorChoice({ ...base, accel: "kvm", machine: "pc,accel=tcg:kvm" }, "x.yaml"),
    );
    expect(error).toBeMaqetError("CONFIG_INVALID");
    expect(error.details).toEqual({
      keyPath: "accel",
      source: "x.yaml",
      accel: "kvm",
      chosen: "tcg:kvm",
      chosenBy: "machine: pc,accel=tcg:kvm",
    });
  });
});
