// Events and audit: a live tail of every fact (filtered by VM and type prefix, as
// `maqet events --vm --type` does), and the audit trail with its hash chain's verification
// status and a JSON-lines export.
import { call, enc } from "./api.js";
import { eventTone, h, put, when, who, why } from "./dom.js";
import { debounce, onEvent, recent } from "./hub.js";

const TAIL = 200;

export function eventsPage() {
  const vmFilter = h("input", { id: "ev-vm", type: "search", autocomplete: "off", placeholder: "all VMs" });
  const typeFilter = h("input", {
    id: "ev-type",
    type: "search",
    autocomplete: "off",
    placeholder: "e.g. vm. or qmp.",
  });
  const tail = h("tbody");
  const count = h("p", { class: "hint", "aria-live": "polite" });

  const matches = (e) => {
    const vm = vmFilter.value.trim();
    const prefix = typeFilter.value.trim();
    const subject = e.vm ?? e.data?.vm ?? null;
    return (!vm || subject === vm) && (!prefix || e.type.startsWith(prefix));
  };
  const row = (e) =>
    h(
      "tr",
      { class: eventTone(e), "data-type": e.type },
      h("td", { "data-label": "Pos" }, e.position),
      h("td", { "data-label": "When" }, when(e.at)),
      h("td", { "data-label": "VM" }, e.vm ?? e.data?.vm ?? "–"),
      h("td", { "data-label": "Type" }, h("code", null, e.type)),
      h("td", { "data-label": "Who" }, who(e)),
      h("td", { "data-label": "Why" }, why(e)),
    );
  const renderTail = () => {
    const shown = recent.filter(matches).slice(-TAIL).reverse();
    put(tail, shown.map(row));
    put(count, `${shown.length} event(s) shown, newest first (of the last ${recent.length} received).`);
  };

  // Audit.
  const auditBody = h("tbody");
  const verify = h("p", { class: "verify", role: "status" }, "Verifying the hash chain…");
  const exportLink = h(
    "a",
    { class: "button", download: "maqet-audit.jsonl", href: "#", "aria-disabled": "true" },
    "Export JSONL",
  );
  let exportUrl;
  const loadAudit = debounce(async () => {
    const vm = vmFilter.value.trim();
    try {
      const entries = await call("GET", `/v1/audit${vm ? `?vm=${enc(vm)}` : ""}`);
      put(
        auditBody,
        entries
          .slice(-300)
          .reverse()
          .map((a) =>
            h(
              "tr",
              {
                class:
                  a.outcome === "refused"
                    ? "tone-refused"
                    : a.outcome === "failed" || a.outcome === "error"
                      ? "tone-crash"
                      : "",
                "data-operation": a.operation,
              },
              h("td", { "data-label": "Seq" }, a.seq),
              h("td", { "data-label": "When" }, when(a.at)),
              h("td", { "data-label": "VM" }, a.vm ?? "–"),
              h("td", { "data-label": "Operation" }, h("code", null, a.operation)),
              h("td", { "data-label": "Tier" }, a.tier ?? "–"),
              h("td", { "data-label": "Outcome" }, a.outcome),
              h("td", { "data-label": "Detail" }, a.detail ?? ""),
              h(
                "td",
                { "data-label": "Who" },
                who({ actor: { user: a.user ?? undefined, host: a.host ?? undefined }, source: a.source }),
              ),
            ),
          ),
      );
      if (exportUrl) URL.revokeObjectURL(exportUrl);
      exportUrl = URL.createObjectURL(
        new Blob(
          entries.map((a) => `${JSON.stringify(a)}\n`),
          { type: "application/x-ndjson" },
        ),
      );
      exportLink.href = exportUrl;
      exportLink.removeAttribute("aria-disabled");
    } catch (e) {
      put(auditBody, h("tr", null, h("td", { colspan: "8" }, `${e.code}: ${e.message}`)));
    }
    try {
      const report = await call("GET", "/v1/audit/verify");
      verify.dataset.ok = "true";
      put(verify, `Hash chain verified: ${report.entries} entries intact.`);
    } catch (e) {
      verify.dataset.ok = "false";
      put(verify, h("strong", null, "Hash chain broken"), `: ${e.message}`);
    }
  }, 300);

  const refilter = () => {
    renderTail();
    loadAudit();
  };
  vmFilter.addEventListener("input", refilter);
  typeFilter.addEventListener("input", renderTail);
  const unsubscribe = onEvent((e) => {
    if (e && matches(e)) {
      tail.prepend(row(e));
      while (tail.children.length > TAIL) tail.lastChild.remove();
    }
    loadAudit();
  });
  renderTail();
  loadAudit();

  const el = h(
    "section",
    { "aria-labelledby": "ev-title" },
    h("h1", { id: "ev-title" }, "Events and audit"),
    h(
      "form",
      { class: "filters", onsubmit: (e) => e.preventDefault() },
      h("label", { for: "ev-vm" }, "VM"),
      vmFilter,
      h("label", { for: "ev-type" }, "Type prefix"),
      typeFilter,
    ),
    h("h2", null, "Live events"),
    count,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "events responsive" },
        h("caption", { class: "visually-hidden" }, "Live event tail"),
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["Pos", "When", "VM", "Type", "Who", "Why"].map((t) => h("th", { scope: "col" }, t)),
          ),
        ),
        tail,
      ),
    ),
    h("h2", { id: "audit-title" }, "Audit trail"),
    h("div", { class: "toolbar" }, verify, exportLink),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "audit responsive", "aria-labelledby": "audit-title" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["Seq", "When", "VM", "Operation", "Tier", "Outcome", "Detail", "Who"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        auditBody,
      ),
    ),
  );
  return {
    title: "Events and audit",
    el,
    dispose: () => {
      unsubscribe();
      if (exportUrl) URL.revokeObjectURL(exportUrl);
    },
  };
}
