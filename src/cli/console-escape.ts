/**
 * Finds the detach key (Ctrl-], as in `virsh console` and telnet) in what the user types while
 * attached to a serial console. Pure: bytes in, "forward these" and "detach now" out.
 *
 * A terminal sends Ctrl-] as the byte 0x1d, unless the guest switched the terminal to a richer
 * keyboard protocol by printing its escape sequence (a full-screen program in the guest may):
 * then Ctrl-] arrives as `ESC [ 93 ; 5 u` (the kitty / fixterms "CSI u" form, maybe with an event
 * type `93;5:1u`) or `ESC [ 27 ; 5 ; 93 ~` (xterm modifyOtherKeys). Those are several bytes and a
 * read can end in the middle of one, so a possible start of one is held back until the next read
 * says what it is, or until {@link EscapeScanner.flush} (the caller flushes after a few
 * milliseconds of silence, so a lone Esc key press still reaches the guest at once).
 *
 * Everything before the detach key is forwarded; nothing after it is (it was typed to detach).
 *
 * @example
 * ```ts
 * const scanner = new EscapeScanner();
 * scanner.push(new TextEncoder().encode("ls\r")); // { forward: "ls\r" bytes, detach: false }
 * scanner.push(Uint8Array.of(0x1d));              // { forward: empty, detach: true }
 * ```
 */

/** The byte a terminal sends for Ctrl-]. */
export const CTRL_RIGHT_BRACKET = 0x1d;

const ESC = 0x1b;
const encoder = new TextEncoder();

/** Multi-byte encodings of Ctrl-] (after ESC). */
const SEQUENCES: readonly Uint8Array[] = ["\x1b[93;5u", "\x1b[93;5:1u", "\x1b[27;5;93~"].map((s) => encoder.encode(s));

export interface ScanResult {
  /** Bytes to send to the guest, in order. */
  forward: Uint8Array;
  /** True when the detach key was found: stop reading, send nothing more. */
  detach: boolean;
  /** True when bytes are held back (a possible start of a sequence): flush them if no more input comes. */
  pending: boolean;
}

export class EscapeScanner {
  #held: Uint8Array = new Uint8Array(0);

  /** Scans the next bytes read from the terminal. */
  push(chunk: Uint8Array): ScanResult {
    const bytes = concat(this.#held, chunk);
    this.#held = new Uint8Array(0);
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i]!;
      if (byte === CTRL_RIGHT_BRACKET) return { forward: bytes.subarray(0, i), detach: true, pending: false };
      if (byte !== ESC) continue;
      const rest = bytes.subarray(i);
      if (SEQUENCES.some((seq) => startsWith(rest, seq))) {
        return { forward: bytes.subarray(0, i), detach: true, pending: false };
      }
      // The read ended inside what may still become one of the sequences: hold it back.
      if (SEQUENCES.some((seq) => rest.length < seq.length && startsWith(seq, rest))) {
        this.#held = rest.slice();
        return { forward: bytes.subarray(0, i), detach: false, pending: true };
      }
    }
    return { forward: bytes, detach: false, pending: false };
  }

  /** The held-back bytes, released as typed (no sequence came); empty when none are held. */
  flush(): Uint8Array {
    const held = this.#held;
    this.#held = new Uint8Array(0);
    return held;
  }
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
