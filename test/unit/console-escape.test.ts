/**
 * The detach key of `console -i` (Ctrl-]): found in any position of a read, in its multi-byte
 * keyboard-protocol forms even when a read ends inside one, never eating a lone Esc or other keys.
 */
import { describe, expect, it } from "vitest";
import { EscapeScanner } from "../../src/cli/console-escape.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("EscapeScanner (Ctrl-] detaches)", () => {
  it("forwards ordinary input untouched, Ctrl-C and arrow keys included", () => {
    const s = new EscapeScanner();
    const r = s.push(bytes("ls -l\r\x03\x1b[A"));
    expect(r).toMatchObject({ detach: false, pending: false });
    expect(text(r.forward)).toBe("ls -l\r\x03\x1b[A");
  });

  it("detaches on 0x1d, forwarding what came before it and nothing after", () => {
    const s = new EscapeScanner();
    const r = s.push(bytes("echo hi\r\x1dreboot\r"));
    expect(r.detach).toBe(true);
    expect(text(r.forward)).toBe("echo hi\r");
  });

  it("detaches on 0x1d alone (its own read)", () => {
    const s = new EscapeScanner();
    expect(text(s.push(bytes("abc")).forward)).toBe("abc");
    const r = s.push(Uint8Array.of(0x1d));
    expect(r).toMatchObject({ detach: true });
    expect(r.forward.length).toBe(0);
  });

  it("detaches on the CSI u form (kitty) split across three reads", () => {
    const s = new EscapeScanner();
    const a = s.push(bytes("x\x1b["));
    expect(a).toMatchObject({ detach: false, pending: true });
    expect(text(a.forward)).toBe("x");
    const b = s.push(bytes("93;"));
    expect(b).toMatchObject({ detach: false, pending: true });
    expect(b.forward.length).toBe(0);
    const c = s.push(bytes("5u"));
    expect(c.detach).toBe(true);
    expect(c.forward.length).toBe(0);
  });

  it("detaches on xterm's modifyOtherKeys form and on CSI u with an event type", () => {
    expect(new EscapeScanner().push(bytes("\x1b[27;5;93~")).detach).toBe(true);
    expect(new EscapeScanner().push(bytes("ab\x1b[93;5:1u")).detach).toBe(true);
  });

  it("releases a held prefix once the next read shows it is something else (arrow key)", () => {
    const s = new EscapeScanner();
    expect(s.push(bytes("\x1b[")).pending).toBe(true);
    const r = s.push(bytes("A"));
    expect(r).toMatchObject({ detach: false, pending: false });
    expect(text(r.forward)).toBe("\x1b[A");
  });

  it("a lone Esc is held only until flush (the caller flushes after a short silence)", () => {
    const s = new EscapeScanner();
    const r = s.push(Uint8Array.of(0x1b));
    expect(r).toMatchObject({ detach: false, pending: true });
    expect(r.forward.length).toBe(0);
    expect([...s.flush()]).toEqual([0x1b]);
    expect(s.flush().length).toBe(0);
    // After a flush the scanner starts clean.
    expect(text(s.push(bytes("q")).forward)).toBe("q");
  });

  it("Ctrl-] right after a held prefix still detaches, forwarding the prefix", () => {
    const s = new EscapeScanner();
    s.push(bytes("\x1b"));
    const r = s.push(Uint8Array.of(0x1d));
    expect(r.detach).toBe(true);
    expect([...r.forward]).toEqual([0x1b]);
  });
});
