// Calls to the agent's API from the console: the session cookie authenticates (same origin;
// the browser adds Origin on writes, which the agent checks).

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code ?? `HTTP_${status}`;
    this.details = error?.details ?? {};
  }
}

function loggedOut(status) {
  if (status === 401) location.assign("/login");
}

/** One JSON call; throws ApiError with the agent's code and message. */
export async function call(method, path, body) {
  const res = await fetch(path, {
    method,
    credentials: "same-origin",
    headers:
      body === undefined
        ? { accept: "application/json" }
        : { accept: "application/json", "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  loggedOut(res.status);
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {}
  if (!res.ok) throw new ApiError(res.status, json?.error);
  return json;
}

/** Reads a response body as JSON lines. */
export async function* jsonLines(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let nl = buffer.indexOf("\n");
    while (nl !== -1) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.trim()) yield JSON.parse(line);
      nl = buffer.indexOf("\n");
    }
  }
  if (buffer.trim()) yield JSON.parse(buffer);
}

/**
 * An operation with its progress: the agent streams the events it appends, progress, then the
 * result or the error (docs/agent.md, "Long operations"). `onFrame` sees each frame.
 */
export async function operation(method, path, body, onFrame, signal) {
  const res = await fetch(path, {
    method,
    credentials: "same-origin",
    signal,
    headers: { accept: "application/x-ndjson", "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  loggedOut(res.status);
  if (!res.ok) {
    let json = null;
    try {
      json = await res.json();
    } catch {}
    throw new ApiError(res.status, json?.error);
  }
  const events = [];
  for await (const frame of jsonLines(res)) {
    onFrame?.(frame);
    if (frame.event) events.push(frame.event);
    if ("result" in frame) return { result: frame.result, events };
    if (frame.error) throw Object.assign(new ApiError(200, frame.error), { events });
  }
  throw new ApiError(0, {
    code: "STREAM_ENDED",
    message: "The agent closed the stream before the outcome (see the history).",
  });
}

export const enc = encodeURIComponent;
