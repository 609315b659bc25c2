/**
 * Parses a server-sent event stream as its text arrives (the WHATWG rules maqet's agent needs:
 * `id`, `event`, `data` over several lines, comments, CRLF or LF, a frame ends at a blank line).
 *
 * @example
 * ```ts
 * const parser = createSseParser((frame) => console.log(frame.id, frame.event, frame.data));
 * parser.push("id: 7\ndata: {}\n\n");
 * ```
 */
export interface SseFrame {
  id?: string;
  /** `message` when the frame names none. */
  event: string;
  data: string;
}

export interface SseParser {
  push(text: string): void;
}

export function createSseParser(onFrame: (frame: SseFrame) => void): SseParser {
  let buffer = "";
  let id: string | undefined;
  let event: string | undefined;
  let data: string[] = [];
  const line = (text: string) => {
    if (text === "") {
      if (data.length)
        onFrame({ ...(id !== undefined ? { id } : {}), event: event ?? "message", data: data.join("\n") });
      id = undefined;
      event = undefined;
      data = [];
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") id = value;
    else if (field === "event") event = value;
    else if (field === "data") data.push(value);
  };
  return {
    push(text) {
      buffer += text;
      for (;;) {
        const nl = buffer.search(/\r\n|\n|\r/);
        if (nl === -1) return;
        const sep = buffer.startsWith("\r\n", nl) ? 2 : 1;
        line(buffer.slice(0, nl));
        buffer = buffer.slice(nl + sep);
      }
    },
  };
}
