import { describe, expect, it } from "vitest";
import { QmpLineSplitter } from "../../src/adapters/qmp-line-splitter.ts";

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Feeds `chunks` in order and returns every line produced. */
function feed(splitter: QmpLineSplitter, chunks: Uint8Array[]): string[] {
  return chunks.flatMap((chunk) => splitter.push(chunk));
}

describe("QmpLineSplitter", () => {
  it("returns one line per CRLF-terminated message", () => {
    const splitter = new QmpLineSplitter();
    expect(splitter.push(bytes('{"return": {}, "id": "1"}\r\n'))).toEqual(['{"return": {}, "id": "1"}']);
    expect(splitter.bufferedBytes).toBe(0);
  });

  it("accepts plain LF endings too", () => {
    const splitter = new QmpLineSplitter();
    expect(splitter.push(bytes('{"a":1}\n{"b":2}\n'))).toEqual(['{"a":1}', '{"b":2}']);
  });

  it("holds a partial line until its newline arrives", () => {
    const splitter = new QmpLineSplitter();
    expect(splitter.push(bytes('{"event": "ST'))).toEqual([]);
    expect(splitter.bufferedBytes).toBe(13);
    expect(splitter.push(bytes('OP"}\r'))).toEqual([]);
    expect(splitter.push(bytes("\n"))).toEqual(['{"event": "STOP"}']);
    expect(splitter.bufferedBytes).toBe(0);
  });

  it("splits several messages in one chunk and keeps the trailing fragment", () => {
    const splitter = new QmpLineSplitter();
    expect(splitter.push(bytes('{"a":1}\r\n{"b":2}\r\n{"c"'))).toEqual(['{"a":1}', '{"b":2}']);
    expect(splitter.push(bytes(":3}\r\n"))).toEqual(['{"c":3}']);
  });

  it("produces the same lines when the stream arrives one byte at a time", () => {
    const stream = bytes('{"QMP": {"version": {}}}\r\n{"return": {}}\n{"event": "RESUME"}\r\n');
    const splitter = new QmpLineSplitter();
    const chunks = Array.from(stream, (b) => Uint8Array.of(b));
    expect(feed(splitter, chunks)).toEqual(['{"QMP": {"version": {}}}', '{"return": {}}', '{"event": "RESUME"}']);
  });

  it("decodes a UTF-8 character split across chunks", () => {
    const line = bytes('{"desc": "café → ok 😀"}\r\n');
    const splitter = new QmpLineSplitter();
    // Cut inside the 2-byte "é", the 3-byte "→" and the 4-byte emoji.
    const cuts = [13, 17, 24, line.length];
    const chunks: Uint8Array[] = [];
    let from = 0;
    for (const to of cuts) {
      chunks.push(line.subarray(from, to));
      from = to;
    }
    expect(feed(splitter, chunks)).toEqual(['{"desc": "café → ok 😀"}']);
  });

  it("skips blank lines and bare CRLFs", () => {
    const splitter = new QmpLineSplitter();
    expect(splitter.push(bytes('\r\n\n  \r\n{"a":1}\r\n\r\n'))).toEqual(['{"a":1}']);
  });

  it("does not keep a reference to the caller's chunk", () => {
    const splitter = new QmpLineSplitter();
    const chunk = bytes('{"a":');
    splitter.push(chunk);
    chunk.fill(0x20);
    expect(splitter.push(bytes("1}\n"))).toEqual(['{"a":1}']);
  });

  it("flush returns the unterminated remainder once", () => {
    const splitter = new QmpLineSplitter();
    splitter.push(bytes('{"a":1}\n{"b":'));
    expect(splitter.flush()).toBe('{"b":');
    expect(splitter.flush()).toBeUndefined();
  });

  describe("max line length guard", () => {
    it("accepts a line of exactly maxLineBytes, even when its CR arrives separately", () => {
      const splitter = new QmpLineSplitter({ maxLineBytes: 8 });
      expect(splitter.push(bytes("12345678\r"))).toEqual([]);
      expect(splitter.push(bytes("\n"))).toEqual(["12345678"]);
    });

    it("throws QMP_PROTOCOL once a line grows past the limit without a newline", () => {
      const splitter = new QmpLineSplitter({ maxLineBytes: 8 });
      splitter.push(bytes("12345"));
      let error: unknown;
      try {
        splitter.push(bytes("67890"));
      } catch (e) {
        error = e;
      }
      expect(error).toBeMaqetError("QMP_PROTOCOL");
      expect((error as Error).message).toMatch(/more than 8 bytes/);
      // The partial line was dropped; the splitter keeps working.
      expect(splitter.bufferedBytes).toBe(0);
      expect(splitter.push(bytes('{"a":1}\n'))).toEqual(['{"a":1}']);
    });

    it("throws when a complete line one byte over the limit arrives in one chunk", () => {
      const splitter = new QmpLineSplitter({ maxLineBytes: 8 });
      expect(() => splitter.push(bytes("123456789\n"))).toThrow(/too long/);
    });

    it("rejects a nonsensical limit", () => {
      expect(() => new QmpLineSplitter({ maxLineBytes: 0 })).toThrow(/maxLineBytes/);
    });
  });
});
