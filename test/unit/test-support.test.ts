/**
 * The suite's own helpers fail saying what broke: the CLI runner tells a killed call from an
 * exit code and shows the output when stdout is not JSON; waitUntil names what it waited for and
 * the last value it saw.
 */
import { describe, expect, it } from "vitest";
import { cliResult, finishedCli } from "../support/cli-runner.ts";
import { waitUntil } from "../support/poll.ts";

const failed = (fields: Record<string, unknown>) => Object.assign(new Error("Command failed"), fields);

describe("cliResult", () => {
  it("keeps an exit code and a signal apart", () => {
    expect(cliResult(["list"], null, "[]", "")).toMatchObject({ code: 0, signal: null });
    expect(cliResult(["start", "x"], failed({ code: 3 }), "", "not found")).toMatchObject({ code: 3, signal: null });
    expect(cliResult(["console", "x"], failed({ code: null, signal: "SIGINT" }), "", "")).toMatchObject({
      code: null,
      signal: "SIGINT",
    });
  });

  it("throws for a call the harness killed: time limit, output limit", () => {
    expect(() => cliResult(["start", "x"], failed({ killed: true, signal: "SIGTERM" }), "half", "waiting")).toThrow(
      /maqet start x: still running after 120000 ms, killed with SIGTERM\nstdout: half\nstderr: waiting/,
    );
    expect(() => cliResult(["events"], failed({ code: "ERR_CHILD_PROCESS_STDIO_MAXBUFFER" }), "", "")).toThrow(
      /maqet events: printed more than \d+ bytes and was killed/,
    );
  });

  it("json() shows the exit, stdout and stderr when stdout is not JSON", () => {
    const r = cliResult(["list", "--json"], failed({ code: 1 }), "", "error: store locked");
    expect(() => r.json()).toThrow(
      /maqet list --json: stdout is not JSON .*; exit 1\nstdout: \nstderr: error: store locked/,
    );
    expect(cliResult(["list"], null, '{"a":1}', "").json()).toEqual({ a: 1 });
  });
});

describe("finishedCli", () => {
  it("keeps a signal as the end of a run, and json() names it when stdout is not JSON", () => {
    const killed = finishedCli(["ls"], {
      code: null,
      signal: "SIGKILL",
      stdout: "",
      stderr: "crash point lock.linked",
    });
    expect(killed).toMatchObject({ code: null, signal: "SIGKILL", stderr: "crash point lock.linked" });
    expect(() => killed.json()).toThrow(/maqet ls: stdout is not JSON .*exit SIGKILL[\s\S]*crash point lock\.linked/);
    expect(finishedCli(["ls"], { code: 0, signal: null, stdout: "[1]", stderr: "" }).json()).toEqual([1]);
  });
});

describe("waitUntil", () => {
  it("returns the value that satisfied the condition", async () => {
    let n = 0;
    expect(
      await waitUntil(
        "n to reach 3",
        () => ++n,
        (v) => v >= 3,
        { everyMs: 1 },
      ),
    ).toBe(3);
  });

  it("throws naming what it waited for and the last value seen", async () => {
    await expect(
      waitUntil(
        "the VM to stop",
        () => ({ state: "running", pid: 42 }),
        (s) => s.state === "stopped",
        {
          timeoutMs: 20,
          everyMs: 5,
        },
      ),
    ).rejects.toThrow("waited 20 ms for the VM to stop; last seen: { state: 'running', pid: 42 }");
  });

  it("shows the probe's last error when it kept failing", async () => {
    await expect(
      waitUntil(
        "the socket",
        () => {
          throw new Error("ENOENT: no such file");
        },
        Boolean,
        { timeoutMs: 10, everyMs: 5 },
      ),
    ).rejects.toThrow("waited 10 ms for the socket; last seen: Error: ENOENT: no such file");
  });
});
