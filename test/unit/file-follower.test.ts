/**
 * followFile on real (tmp) files with a simulated clock: each idle poll asks `isDone`, and the
 * tests use that call as the moment to grow, truncate or replace the file, so every step is
 * deterministic and nothing sleeps for real.
 */
import { appendFile, mkdtemp, rm, truncate, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { firstValueFrom, take, toArray } from "rxjs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { followFile, readTextFile } from "../../src/adapters/file-follower.ts";
import { SimulatedClock } from "../support/fake-ports.ts";

/** An isDone that runs one step per idle poll and answers true after the last one. */
function script(steps: Array<() => Promise<unknown> | unknown>): {
  isDone: () => Promise<boolean>;
  polls: () => number;
} {
  let i = 0;
  return {
    isDone: async () => {
      const step = steps[i++];
      if (step === undefined) return true;
      await step();
      return false;
    },
    polls: () => i,
  };
}

describe("followFile", () => {
  let dir: string;
  let file: string;
  const clock = new SimulatedClock();
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "maqet-follow-"));
    file = join(dir, "serial.log");
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("emits the existing content, then what is appended, and completes after a last read once done", async () => {
    await writeFile(file, "boot\n");
    const { isDone } = script([
      () => appendFile(file, "MAQET-MARKER "),
      () => appendFile(file, "HELLO\r\n"),
      () => undefined,
    ]);
    const chunks = await firstValueFrom(followFile(file, { isDone, clock, pollIntervalMs: 10 }).pipe(toArray()));
    expect(chunks.join("")).toBe("boot\nMAQET-MARKER HELLO\r\n");
    expect(chunks).toEqual(["boot\n", "MAQET-MARKER ", "HELLO\r\n"]);
  });

  it("reads what the writer wrote just before it was done (the final drain)", async () => {
    await writeFile(file, "a");
    let calls = 0;
    const isDone = async () => {
      calls++;
      if (calls === 1) await appendFile(file, "b"); // written, then the writer is gone at once
      return calls >= 1;
    };
    const chunks = await firstValueFrom(followFile(file, { isDone, clock }).pipe(toArray()));
    expect(chunks.join("")).toBe("ab");
  });

  it("waits for a file that does not exist yet", async () => {
    const { isDone } = script([() => undefined, () => writeFile(file, "late\n")]);
    const chunks = await firstValueFrom(followFile(file, { isDone, clock }).pipe(toArray()));
    expect(chunks).toEqual(["late\n"]);
  });

  it("completes at once with nothing when the file never appears and the writer is done", async () => {
    const chunks = await firstValueFrom(followFile(file, { isDone: () => true, clock }).pipe(toArray()));
    expect(chunks).toEqual([]);
  });

  it("starts over when the file is truncated (a new QEMU run) and when it is replaced", async () => {
    await writeFile(file, "first run, long output\n");
    const { isDone } = script([
      async () => {
        await truncate(file, 0);
        await writeFile(file, "run 2\n");
      },
      async () => {
        await unlink(file);
        await writeFile(file, "run 3, another file\n");
      },
    ]);
    const text = (await firstValueFrom(followFile(file, { isDone, clock }).pipe(toArray()))).join("");
    expect(text).toBe("first run, long output\nrun 2\nrun 3, another file\n");
  });

  it("starts from a byte offset", async () => {
    await writeFile(file, "0123456789");
    const chunks = await firstValueFrom(followFile(file, { from: 4, isDone: () => true, clock }).pipe(toArray()));
    expect(chunks.join("")).toBe("456789");
  });

  it("starts at the end: only what is written after subscribing", async () => {
    await writeFile(file, "old output\n");
    const { isDone } = script([() => appendFile(file, "new\n")]);
    const chunks = await firstValueFrom(followFile(file, { from: "end", isDone, clock }).pipe(toArray()));
    expect(chunks.join("")).toBe("new\n");
  });

  it("emits a multi-byte character split between two reads whole", async () => {
    const text = "é€𝄞".repeat(5); // 2-, 3- and 4-byte characters
    await writeFile(file, text);
    const chunks = await firstValueFrom(followFile(file, { chunkBytes: 3, isDone: () => true, clock }).pipe(toArray()));
    expect(chunks.join("")).toBe(text);
    expect(chunks.join("")).not.toContain("\uFFFD");
  });

  it("follows until unsubscribed when nothing says done, and stops polling then", async () => {
    await writeFile(file, "x");
    let polls = 0;
    const isDone = () => {
      polls++;
      return false;
    };
    const first = await firstValueFrom(followFile(file, { isDone, clock }).pipe(take(1)));
    expect(first).toBe("x");
    const after = polls;
    await new Promise((r) => setTimeout(r, 20));
    expect(polls).toBe(after);
  });

  it("errors with PROCESS_ERROR when the path cannot be read", async () => {
    const error = await firstValueFrom(followFile(dir, { isDone: () => true, clock })).catch((e) => e);
    expect(error).toMatchObject({ code: "PROCESS_ERROR" });
    expect(String(error.message)).toContain(dir);
  });
});

describe("readTextFile", () => {
  it("reads a file, and gives '' for a missing one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "maqet-read-"));
    try {
      await writeFile(join(dir, "f"), "hello\r\n");
      expect(await readTextFile(join(dir, "f"))).toBe("hello\r\n");
      expect(await readTextFile(join(dir, "missing"))).toBe("");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
