/**
 * Keys for QMP `send-key`: QEMU's QKeyCode names (the 150 values of QEMU 7.2's `QKeyCode` enum,
 * read from `query-qmp-schema`) and the US-keyboard mapping `qmp type` uses for text. Pure.
 *
 * @example
 * ```ts
 * parseKeyChord(["ctrl", "alt", "delete"]); // [{type:"qcode",data:"ctrl"}, …]
 * textToChords("Hi!"); // [["shift","h"], ["i"], ["shift","1"]]
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";

/** QEMU 7.2's QKeyCode values (`query-qmp-schema`, enum of `send-key`'s `keys[].data`). */
export const QCODES: readonly string[] = (
  "unmapped shift shift_r alt alt_r ctrl ctrl_r menu esc 1 2 3 4 5 6 7 8 9 0 minus equal backspace tab " +
  "q w e r t y u i o p bracket_left bracket_right ret a s d f g h j k l semicolon apostrophe grave_accent " +
  "backslash z x c v b n m comma dot slash asterisk spc caps_lock f1 f2 f3 f4 f5 f6 f7 f8 f9 f10 num_lock " +
  "scroll_lock kp_divide kp_multiply kp_subtract kp_add kp_enter kp_decimal sysrq kp_0 kp_1 kp_2 kp_3 kp_4 " +
  "kp_5 kp_6 kp_7 kp_8 kp_9 less f11 f12 print home pgup pgdn end left up down right insert delete stop " +
  "again props undo front copy open paste find cut lf help meta_l meta_r compose pause ro hiragana henkan " +
  "yen muhenkan katakanahiragana kp_comma kp_equals power sleep wake audionext audioprev audiostop audioplay " +
  "audiomute volumeup volumedown mediaselect mail calculator computer ac_home ac_back ac_forward ac_refresh " +
  "ac_bookmarks lang1 lang2"
).split(" ");

const QCODE_SET = new Set(QCODES);

/** One key of a `send-key` chord, as QMP's `KeyValue`. */
export type KeyValue = { type: "qcode"; data: string } | { type: "number"; data: number };

/** Unshifted punctuation on a US keyboard. */
const PLAIN: Readonly<Record<string, string>> = {
  " ": "spc",
  "\n": "ret",
  "\r": "ret",
  "\t": "tab",
  "-": "minus",
  "=": "equal",
  "[": "bracket_left",
  "]": "bracket_right",
  "\\": "backslash",
  ";": "semicolon",
  "'": "apostrophe",
  "`": "grave_accent",
  ",": "comma",
  ".": "dot",
  "/": "slash",
};

/** Shifted symbols: shift + this key. */
const SHIFTED: Readonly<Record<string, string>> = {
  "!": "1",
  "@": "2",
  "#": "3",
  $: "4",
  "%": "5",
  "^": "6",
  "&": "7",
  "*": "8",
  "(": "9",
  ")": "0",
  _: "minus",
  "+": "equal",
  "{": "bracket_left",
  "}": "bracket_right",
  "|": "backslash",
  ":": "semicolon",
  '"': "apostrophe",
  "~": "grave_accent",
  "<": "comma",
  ">": "dot",
  "?": "slash",
};

/**
 * Keys given on the command line → one `send-key` chord (all pressed together). Each argument is
 * a qcode (`ctrl`), a chord written with dashes (`ctrl-alt-delete`: no qcode contains a dash),
 * or a raw scancode number (`0x1d`, `29`; `0`-`9` are the digit keys' qcodes). Throws `INVALID_ARGUMENT` naming an unknown key.
 *
 * @example
 * ```ts
 * parseKeyChord(["ctrl-alt-delete"]).map((k) => k.data); // ["ctrl", "alt", "delete"]
 * ```
 */
export function parseKeyChord(keys: readonly string[]): KeyValue[] {
  const chord: KeyValue[] = [];
  for (const arg of keys) {
    for (const key of arg.split("-")) {
      // Digits 0-9 are qcodes (the keys), so names win over numbers.
      if (QCODE_SET.has(key)) {
        chord.push({ type: "qcode", data: key });
      } else if (/^(?:0x[0-9a-f]+|\d+)$/i.test(key)) {
        chord.push({ type: "number", data: Number(key) });
      } else {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          `Unknown key '${key}'${arg === key ? "" : ` in '${arg}'`}: use QEMU qcode names such as ctrl, alt, delete, ret, spc, f1, a, 1 (see docs/cli.md#qmp-keys), or a scancode number like 0x1c.`,
          { details: { key } },
        );
      }
    }
  }
  if (chord.length === 0) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      "No keys given: name at least one, e.g. `maqet qmp keys web ctrl alt delete`.",
    );
  }
  return chord;
}

/**
 * Text → one chord (list of qcodes) per character, US layout: letters and digits as themselves,
 * capitals and shifted symbols with `shift`, space `spc`, newline `ret` (CR LF counts once), tab
 * `tab`. Anything else (non-ASCII included) is an `INVALID_ARGUMENT` naming the character and
 * where it is; nothing is sent then.
 *
 * @example
 * ```ts
 * textToChords("a B"); // [["a"], ["spc"], ["shift", "b"]]
 * ```
 */
export function textToChords(text: string): string[][] {
  const chords: string[][] = [];
  const chars = [...text];
  chars.forEach((ch, i) => {
    if (ch === "\n" && chars[i - 1] === "\r") return;
    if (/^[a-z0-9]$/.test(ch)) chords.push([ch]);
    else if (/^[A-Z]$/.test(ch)) chords.push(["shift", ch.toLowerCase()]);
    else if (PLAIN[ch] !== undefined) chords.push([PLAIN[ch]]);
    else if (SHIFTED[ch] !== undefined) chords.push(["shift", SHIFTED[ch]]);
    else {
      const code = `U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
      throw new MaqetError(
        "INVALID_ARGUMENT",
        `Cannot type character ${JSON.stringify(ch)} (${code}) at position ${i + 1}: \`qmp type\` types US-keyboard ASCII only. Nothing was sent. Send other keys with \`maqet qmp keys\`.`,
        { details: { character: ch, codePoint: code, position: i + 1 } },
      );
    }
  });
  if (chords.length === 0) throw new MaqetError("INVALID_ARGUMENT", "Nothing to type: the text is empty.");
  return chords;
}
