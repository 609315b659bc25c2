// One EventSource on /v1/events for the whole console: every page listens to it. The browser
// reconnects by itself with Last-Event-ID (the event's global position), so nothing is lost.

const listeners = new Set();
/** The latest events (newest last), for the events page. */
export const recent = [];
/** The last event seen per VM name. */
export const lastByVm = new Map();
let caughtUp = false;
let source;

export function startHub(statusEl) {
  source = new EventSource("/v1/events");
  source.onopen = () => {
    statusEl.textContent = caughtUp ? "live" : "catching up…";
    statusEl.dataset.state = "open";
  };
  source.onerror = () => {
    statusEl.textContent = "reconnecting…";
    statusEl.dataset.state = "error";
    // EventSource retries by itself; a session that ended (logout, agent restarted) never comes back.
    fetch("/v1/version", { credentials: "same-origin" })
      .then((res) => {
        if (res.status === 401) location.assign("/login");
      })
      .catch(() => {});
  };
  source.addEventListener("caught-up", () => {
    caughtUp = true;
    statusEl.textContent = "live";
    statusEl.dataset.state = "live";
    for (const fn of listeners) fn(null);
  });
  source.onmessage = (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    recent.push(event);
    if (recent.length > 2000) recent.splice(0, recent.length - 2000);
    if (event.vm) lastByVm.set(event.vm, event);
    for (const fn of listeners) fn(event);
  };
}

/** Calls `fn(event)` for each new event (and `fn(null)` once caught up); returns the unsubscribe. */
export function onEvent(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function isCaughtUp() {
  return caughtUp;
}

/** Runs `fn` at most once per `ms` (trailing), for refreshes triggered by bursts of events. */
export function debounce(fn, ms = 150) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
