// The VMs page: a live list (state, pid, uptime, accel, memory/CPU, last event) refreshed from
// the event stream with no reload, lifecycle buttons with progress, and "add a VM from YAML".

import { ACTIONS, actionButton, runAction } from "./actions.js";
import { call } from "./api.js";
import { badge, duration, h, put, when } from "./dom.js";
import { debounce, lastByVm, onEvent } from "./hub.js";

const EXAMPLE = `name: web
binary: qemu-system-x86_64
accel: tcg
memory: 128M
cpu: 1
`;

export function vmsPage() {
  const rows = new Map(); // name -> { tr, cells, out, buttons, status }
  const tbody = h("tbody");
  const empty = h("p", { class: "empty", hidden: true }, "No VMs yet. Add one below from its YAML.");
  const listError = h("p", { class: "error", role: "alert" });
  const stopTimeout = h("input", {
    id: "stop-timeout",
    type: "number",
    min: "1",
    max: "3600",
    value: "30",
    inputmode: "numeric",
  });

  const rowFor = (vm) => {
    let row = rows.get(vm.name);
    if (row) return row;
    const cells = {
      name: h("th", { scope: "row" }, h("a", { href: `#/vm/${encodeURIComponent(vm.name)}` }, vm.name)),
      state: h("td", { "data-label": "State", class: "cell-state" }),
      pid: h("td", { "data-label": "PID" }),
      uptime: h("td", { "data-label": "Uptime" }),
      accel: h("td", { "data-label": "Accel" }),
      size: h("td", { "data-label": "Memory / CPU" }),
      last: h("td", { "data-label": "Last event", class: "cell-last" }),
      actions: h("td", { "data-label": "Actions", class: "cell-actions" }),
    };
    const out = h("output", { class: "progress", "aria-live": "polite", for: "" });
    row = { tr: h("tr", { "data-vm": vm.name }, Object.values(cells)), cells, out, buttons: new Map(), status: vm };
    for (const action of ACTIONS) {
      const button = actionButton(action, async () => {
        await runAction(action, row.status.name, out, { stopTimeout: Number(stopTimeout.value) || 30 });
        refresh();
      });
      button.setAttribute("aria-label", `${action.label} ${vm.name}`);
      row.buttons.set(action.id, button);
    }
    put(cells.actions, h("div", { class: "buttons" }, [...row.buttons.values()]), out);
    rows.set(vm.name, row);
    return row;
  };

  const paint = (row) => {
    const vm = row.status;
    put(
      row.cells.state,
      badge(vm.state, vm.state === "stopped" ? vm.detail : null),
      vm.tainted ? h("span", { class: "badge tone-taint" }, "tainted") : "",
    );
    put(row.cells.pid, vm.pid ?? "–");
    put(row.cells.uptime, vm.startedAt ? duration(Date.now() - Date.parse(vm.startedAt)) : "–");
    put(row.cells.accel, vm.accelInUse ? `${vm.accelInUse}` : `${vm.accel} (config)`);
    put(row.cells.size, `${vm.memory ?? "default"} / ${vm.cpu ?? 1} CPU`);
    const last = lastByVm.get(vm.name);
    put(
      row.cells.last,
      last ? [h("code", null, last.type), h("br"), h("small", null, when(last.at))] : `v${vm.version}`,
    );
    for (const action of ACTIONS) row.buttons.get(action.id).disabled = !action.when.includes(vm.state);
  };

  const refresh = debounce(async () => {
    try {
      const list = await call("GET", "/v1/vms");
      put(listError);
      const seen = new Set();
      for (const vm of list) {
        const row = rowFor(vm);
        row.status = vm;
        seen.add(vm.name);
        paint(row);
      }
      for (const [name, row] of rows) {
        if (!seen.has(name)) {
          row.tr.remove();
          rows.delete(name);
        }
      }
      // Keep the DOM rows in list order without re-creating them (focus stays where it was).
      for (const vm of list) tbody.append(rows.get(vm.name).tr);
      empty.hidden = list.length > 0;
    } catch (error) {
      put(listError, `Cannot list the VMs: ${error.message}`);
    }
  }, 120);

  // Add a VM from YAML.
  const yaml = h(
    "textarea",
    { id: "add-yaml", rows: "8", spellcheck: "false", "aria-describedby": "add-help" },
    EXAMPLE,
  );
  const addName = h("input", {
    id: "add-name",
    type: "text",
    autocomplete: "off",
    pattern: "[A-Za-z0-9_][A-Za-z0-9._-]{0,62}",
  });
  const addOut = h("output", { id: "add-result", class: "progress", "aria-live": "polite" });
  const form = h(
    "form",
    {
      class: "add",
      onsubmit: async (e) => {
        e.preventDefault();
        addOut.dataset.outcome = "running";
        put(addOut, "Adding…");
        try {
          const body = { config: yaml.value };
          if (addName.value.trim()) body.name = addName.value.trim();
          const vm = await call("POST", "/v1/vms", body);
          addOut.dataset.outcome = "ok";
          put(
            addOut,
            "Added ",
            h("a", { href: `#/vm/${encodeURIComponent(vm.name)}` }, vm.name),
            ` (vm.defined, version ${vm.version}).`,
          );
          refresh();
        } catch (error) {
          addOut.dataset.outcome = "error";
          const key = error.details?.keyPath;
          put(
            addOut,
            h("strong", null, error.code),
            key !== undefined && key !== "" ? [" at key ", h("code", { class: "key-path" }, key)] : "",
            `: ${error.message}`,
          );
        }
      },
    },
    h("label", { for: "add-yaml" }, "VM config (YAML)"),
    yaml,
    h(
      "p",
      { id: "add-help", class: "hint" },
      "The same keys as a config file (docs/config.md). Relative paths resolve against the agent's directory.",
    ),
    h("label", { for: "add-name" }, "Name (optional, overrides name:)"),
    addName,
    h("button", { type: "submit" }, "Add VM"),
    addOut,
  );

  const unsubscribe = onEvent(() => refresh());
  const ticker = setInterval(() => {
    for (const row of rows.values()) paint(row);
  }, 1000);
  refresh();

  const el = h(
    "section",
    { "aria-labelledby": "vms-title" },
    h("h1", { id: "vms-title" }, "Virtual machines"),
    h("div", { class: "toolbar" }, h("label", { for: "stop-timeout" }, "Graceful stop timeout (s)"), stopTimeout),
    listError,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "vms responsive" },
        h("caption", { class: "visually-hidden" }, "VMs, updated live"),
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["Name", "State", "PID", "Uptime", "Accel", "Memory / CPU", "Last event", "Actions"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        tbody,
      ),
    ),
    empty,
    h("h2", null, "Add a VM"),
    form,
  );
  return {
    title: "VMs",
    el,
    dispose: () => {
      unsubscribe();
      clearInterval(ticker);
    },
  };
}
