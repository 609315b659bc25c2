// Building DOM without HTML parsing: every string becomes a text node (never innerHTML), so
// text from a guest (serial output, QMP replies, descriptions) can only ever show as text.

/** An element with attributes (`on<event>` functions become listeners) and children. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  add(el, children);
  return el;
}

/** Appends children (nodes, or anything else as text). */
export function add(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces an element's children. */
export function put(el, ...children) {
  el.replaceChildren();
  return add(el, children);
}

/** "3 h 12 min", "42 s": a duration for people. */
export function duration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return "–";
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours} h ${m % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** A timestamp as local time with seconds. */
export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString(undefined, { hour12: false });
}

/** A state badge. */
export function badge(state, detail) {
  return h(
    "span",
    { class: `badge state-${String(state).replace(/[^a-z-]/g, "")}` },
    state,
    detail ? ` (${detail})` : "",
  );
}

/** Who did it: user@host via source. */
export function who(e) {
  const a = e.actor ?? {};
  const user = a.user ?? (a.uid !== undefined ? `uid ${a.uid}` : "");
  const where = a.host ? (user ? `@${a.host}` : a.host) : "";
  return `${user}${where}${e.source ? ` via ${e.source}` : ""}` || "unknown";
}

/** Why, in one phrase, from an event's data (a reason, a detail, an error). */
export function why(e) {
  const d = e.data ?? {};
  const parts = [];
  for (const key of ["detail", "reason", "command", "tier", "rule", "code", "tag", "name", "method"]) {
    const v = d[key];
    if (typeof v === "string" || typeof v === "number") parts.push(`${key}: ${v}`);
  }
  if (d.error && typeof d.error === "object" && typeof d.error.message === "string") parts.push(d.error.message);
  else if (typeof d.message === "string") parts.push(d.message);
  return parts.join(" · ");
}

/** A class that makes crashes, failures, refusals and taint stand out. */
export function eventTone(e) {
  const t = e.type ?? "";
  const d = e.data ?? {};
  if (t.endsWith("refused") || t.endsWith("rejected") || d.outcome === "refused") return "tone-refused";
  if (d.detail === "crashed" || t.endsWith("failed") || t.includes("crash") || d.detail === "failed")
    return "tone-crash";
  if (d.tainted || d.taint || d.tier === "dangerous" || t.includes("taint")) return "tone-taint";
  return "";
}
