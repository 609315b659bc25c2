// Time travel: the VM's facts as a timeline (who, when, why), and its state as of any version —
// the same fold as `maqet history VM --version N` (GET /v1/vms/:vm/history?version=N). A slider
// and each fact choose the version; gaps in time show; crashes, refusals and taint stand out.
import { call, enc } from "./api.js";
import { badge, duration, eventTone, h, put, when, who, why } from "./dom.js";
import { debounce, onEvent } from "./hub.js";

/** A pause between two facts longer than this shows as a gap. */
const GAP_MS = 5 * 60_000;

export function timelinePage(name) {
  const list = h("ol", { class: "timeline", "aria-label": `Facts of VM ${name}` });
  const slider = h("input", { id: "tt-version", type: "range", min: "0", max: "0", step: "1", value: "0" });
  const sliderLabel = h("output", { id: "tt-version-label", for: "tt-version", "aria-live": "polite" });
  const state = h("div", { class: "tt-state", "aria-live": "polite", "aria-labelledby": "tt-state-title" });
  const error = h("p", { class: "error", role: "alert" });
  let entries = [];
  let following = true;
  const items = new Map(); // version -> li

  const select = debounce(async (version) => {
    for (const [v, li] of items) li.classList.toggle("selected", v === version);
    for (const [v, li] of items) li.querySelector("button")?.setAttribute("aria-pressed", String(v === version));
    try {
      const at = await call("GET", `/v1/vms/${enc(name)}/history?version=${version}`);
      const s = at.state;
      const event = at.events.at(-1);
      put(
        state,
        h("h2", { id: "tt-state-title" }, `As of version ${at.version}`),
        h(
          "p",
          { class: "tt-now" },
          "State: ",
          badge(s.state, s.detail),
          s.tainted ? h("span", { class: "badge tone-taint" }, "tainted") : "",
        ),
        h(
          "dl",
          { class: "facts" },
          [
            ["Fact", event ? `${event.type} (v${event.version})` : "–"],
            ["When", event ? when(event.at) : "–"],
            ["Who", event ? who(event) : "–"],
            ["PID", s.pid ?? "–"],
            ["Accel", s.accelInUse ?? `${s.accel} (config)`],
            ["Memory / CPU", `${s.memory ?? "default"} / ${s.cpu ?? 1}`],
            [
              "Last stop",
              s.lastStop ? `${s.lastStop.detail}${s.lastStop.reason ? ` (${s.lastStop.reason})` : ""}` : "–",
            ],
            ["Last error", s.lastError ? `${s.lastError.reason}: ${s.lastError.message}` : "–"],
          ].flatMap(([k, v]) => [h("dt", null, k), h("dd", null, String(v))]),
        ),
        h(
          "details",
          null,
          h("summary", null, "Config at this version"),
          h("pre", { class: "config" }, JSON.stringify(at.config, null, 2)),
        ),
      );
      put(error);
    } catch (e) {
      put(error, `${e.code}: ${e.message}`);
    }
  }, 80);

  const setVersion = (version, focusItem = false) => {
    slider.value = String(version);
    put(sliderLabel, `version ${version} of ${entries.length - 1}`);
    following = version === entries.length - 1;
    select(version);
    if (focusItem) items.get(version)?.querySelector("button")?.focus();
  };

  const itemFor = (e, previous) => {
    const nodes = [];
    if (previous) {
      const gap = Date.parse(e.at) - Date.parse(previous.at);
      if (gap > GAP_MS)
        nodes.push(
          h("li", { class: "gap", "aria-label": `gap of ${duration(gap)}` }, `… ${duration(gap)} without a fact …`),
        );
    }
    const tone = eventTone(e);
    const li = h(
      "li",
      { class: `fact ${tone}`, "data-version": e.version, "data-type": e.type },
      h(
        "button",
        { type: "button", "aria-pressed": "false", onclick: () => setVersion(e.version) },
        h("span", { class: "v" }, `v${e.version}`),
        " ",
        h("code", { class: "type" }, e.type),
        tone ? h("span", { class: `flag ${tone}` }, tone.replace("tone-", "")) : "",
        h("span", { class: "when" }, when(e.at)),
        h("span", { class: "who" }, who(e)),
        h("span", { class: "why" }, why(e)),
      ),
    );
    items.set(e.version, li);
    nodes.push(li);
    return nodes;
  };

  const load = async () => {
    try {
      // History's one shape: {vm, point, version, events, state, config} (docs/cli.md, history --json).
      entries = (await call("GET", `/v1/vms/${enc(name)}/history`)).events;
      items.clear();
      put(
        list,
        entries.map((e, i) => itemFor(e, entries[i - 1])),
      );
      slider.max = String(Math.max(0, entries.length - 1));
      if (entries.length) setVersion(entries.length - 1);
    } catch (e) {
      put(error, `${e.code}: ${e.message}`);
    }
  };

  slider.addEventListener("input", () => setVersion(Number(slider.value)));
  const unsubscribe = onEvent((e) => {
    if (!e || e.vm !== name || e.version === undefined || items.has(e.version)) return;
    const entry = { ...e };
    const previous = entries.at(-1);
    entries.push(entry);
    list.append(...itemFor(entry, previous));
    slider.max = String(entries.length - 1);
    if (following) setVersion(entries.length - 1);
    else put(sliderLabel, `version ${slider.value} of ${entries.length - 1}`);
  });
  load();

  const el = h(
    "article",
    { class: "tt", "aria-labelledby": "tt-title" },
    h(
      "p",
      { class: "crumbs" },
      h("a", { href: "#/" }, "VMs"),
      " / ",
      h("a", { href: `#/vm/${enc(name)}` }, name),
      " / timeline",
    ),
    h("h1", { id: "tt-title" }, `Timeline of ${name}`),
    error,
    h(
      "div",
      { class: "tt-slider" },
      h("label", { for: "tt-version" }, "Show the state as of version"),
      slider,
      sliderLabel,
      h(
        "p",
        { class: "legend" },
        h("span", { class: "flag tone-crash" }, "crash / failure"),
        " ",
        h("span", { class: "flag tone-refused" }, "refused"),
        " ",
        h("span", { class: "flag tone-taint" }, "taint"),
      ),
    ),
    h("div", { class: "tt-body" }, list, state),
  );
  return { title: `Timeline ${name}`, el, dispose: unsubscribe };
}
