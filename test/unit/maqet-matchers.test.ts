/**
 * The suite's own matcher: `toBeMaqetError` passes on the right code (and details), and when it
 * fails its message names what was thrown instead.
 */
import { describe, expect, it } from "vitest";
import { MaqetError } from "../../src/errors/maqet-error.ts";

const busy = new MaqetError("VM_BUSY", "VM 'web' is busy stopping.", { details: { vm: "web", op: "stop" } });

describe("toBeMaqetError", () => {
  it("passes on the code, and on a subset of the details", async () => {
    expect(busy).toBeMaqetError("VM_BUSY");
    expect(busy).toBeMaqetError("VM_BUSY", { vm: "web" });
    await expect(Promise.reject(busy)).rejects.toBeMaqetError("VM_BUSY", { op: "stop" });
    expect(busy).not.toBeMaqetError("VM_NOT_FOUND");
  });

  it("fails with the actual error's code, message and details", () => {
    expect(() => expect(busy).toBeMaqetError("VM_NOT_FOUND")).toThrow(
      `expected MaqetError VM_NOT_FOUND, got MaqetError VM_BUSY: VM 'web' is busy stopping. { vm: 'web', op: 'stop' }`,
    );
    expect(() => expect(busy).toBeMaqetError("VM_BUSY", { vm: "db" })).toThrow(
      /expected MaqetError VM_BUSY with details \{ vm: 'db' \}, got MaqetError VM_BUSY: /,
    );
    expect(() => expect(new TypeError("x is undefined")).toBeMaqetError("VM_BUSY")).toThrow(
      "expected MaqetError VM_BUSY, got TypeError: x is undefined",
    );
    expect(() => expect(undefined).toBeMaqetError("VM_BUSY")).toThrow("expected MaqetError VM_BUSY, got undefined");
  });

  it("fails a promise that resolved, saying so", async () => {
    await expect(expect(Promise.resolve(3)).rejects.toBeMaqetError("VM_BUSY")).rejects.toThrow(/resolved/);
  });
});
