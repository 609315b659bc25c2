/**
 * Framing for the QMP byte stream: QEMU writes one JSON object per CRLF-terminated line, but a
 * socket hands us arbitrary chunks (half a line, several lines, a UTF-8 sequence cut in two).
 *
 * Splitting happens on bytes, not on decoded text: the LF byte (0x0A) never occurs inside a
 * multi-byte UTF-8 sequence, so a line is only decoded once all of its bytes are in, and a
 * character split across chunks is never mangled. Pure: no I/O, no timers.
 */
import { MaqetError } from "../errors/maqet-error.ts";

const LF = 0x0a;
const CR = 0x0d;

/** 16 MiB: far above the largest reply we know of (`query-qmp-schema`, a few hundred KiB on 7.2). */
const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

/**
 * @example
 * ```ts
 * new QmpLineSplitter({ maxLineBytes: 1024 * 1024 });
 * ```
 */
export interface QmpLineSplitterOptions {
  /**
   * Longest line accepted, in bytes, without its line ending. A longer line means a broken or
   * hostile peer; `push` then throws `QMP_PROTOCOL` instead of buffering without bound.
   */
  maxLineBytes?: number;
}

/**
 * Turns socket chunks into complete text lines. LF and CRLF endings are both accepted and
 * stripped; blank lines are skipped.
 *
 * @example
 * ```ts
 * const splitter = new QmpLineSplitter();
 * socket.on("data", (chunk: Buffer) => {
 *   for (const line of splitter.push(chunk)) handle(JSON.parse(line));
 * });
 * ```
 */
export class QmpLineSplitter {
  readonly maxLineBytes: number;
  readonly #decoder = new TextDecoder("utf-8");
  /** Bytes of the current, unterminated line, in arrival order. */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;

  constructor(options: QmpLineSplitterOptions = {}) {
    const max = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    if (!Number.isInteger(max) || max < 1) {
      throw new MaqetError("INVALID_ARGUMENT", `Invalid maxLineBytes: ${max}. Pass a positive integer.`, {
        details: { maxLineBytes: max },
      });
    }
    this.maxLineBytes = max;
  }

  /** Bytes held back waiting for the end of their line. */
  get bufferedBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Adds a chunk and returns every line it completes, oldest first.
   * Throws `QMP_PROTOCOL` when a line grows past `maxLineBytes`; the partial line (and any line
   * completed earlier in the same chunk) is dropped so the splitter stays usable, but the caller
   * should treat the stream as corrupt.
   */
  push(chunk: Uint8Array): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(LF, start);
      if (newline === -1) break;
      let line: string;
      // Common case: the whole line is in this chunk, decode it in place without copying.
      if (this.#pendingBytes === 0) line = this.#decode(chunk.subarray(start, newline));
      else {
        this.#append(chunk.subarray(start, newline));
        line = this.#takeLine();
      }
      if (line !== "") lines.push(line);
      start = newline + 1;
    }
    if (start < chunk.length) this.#append(chunk.subarray(start));
    return lines;
  }

  /**
   * Returns the unterminated remainder (for example the last line of a stream that ended without
   * a newline) and empties the buffer; undefined when nothing is buffered.
   */
  flush(): string | undefined {
    if (this.#pendingBytes === 0) return undefined;
    const line = this.#takeLine();
    return line === "" ? undefined : line;
  }

  #append(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    // A trailing CR may belong to a CRLF whose LF is in the next chunk; it is stripped in
    // #decode, so allow one byte of slack for it here.
    const limit = this.maxLineBytes + 1;
    if (this.#pendingBytes + bytes.length > limit) {
      const seen = this.#pendingBytes + bytes.length;
      this.#pending = [];
      this.#pendingBytes = 0;
      throw new MaqetError(
        "QMP_PROTOCOL",
        `QMP line too long: more than ${this.maxLineBytes} bytes without a newline (${seen} so far). ` +
          "The peer is not speaking QMP or the stream is corrupt; reconnect, or raise maxLineBytes if a reply is legitimately this large.",
        { details: { maxLineBytes: this.maxLineBytes, bytes: seen } },
      );
    }
    // Copy: the socket may reuse the chunk's memory once the handler returns.
    this.#pending.push(bytes.slice());
    this.#pendingBytes += bytes.length;
  }

  #takeLine(): string {
    let bytes: Uint8Array;
    if (this.#pending.length === 1) bytes = this.#pending[0]!;
    else {
      bytes = new Uint8Array(this.#pendingBytes);
      let offset = 0;
      for (const part of this.#pending) {
        bytes.set(part, offset);
        offset += part.length;
      }
    }
    this.#pending = [];
    this.#pendingBytes = 0;
    return this.#decode(bytes);
  }

  /** Decodes one line's bytes, without its CR, enforcing the length limit. */
  #decode(bytes: Uint8Array): string {
    const end = bytes.length > 0 && bytes[bytes.length - 1] === CR ? bytes.length - 1 : bytes.length;
    if (end > this.maxLineBytes) {
      throw new MaqetError("QMP_PROTOCOL", `QMP line too long: ${end} bytes, limit ${this.maxLineBytes}.`, {
        details: { maxLineBytes: this.maxLineBytes, bytes: end },
      });
    }
    return this.#decoder.decode(bytes.subarray(0, end)).trim();
  }
}
