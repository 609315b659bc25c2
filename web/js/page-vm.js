// One VM: its status and actions, config, disks, snapshots (create / apply / delete with
// progress), the live serial console (its history, then what comes), a screenshot on demand,
// and a QMP box that obeys the security tiers (a refused command shows its recorded fact).
import { ACTIONS, actionButton, runAction } from "./actions.js";
import { call, enc, operation } from "./api.js";
import { badge, duration, h, put, when } from "./dom.js";
import { debounce, onEvent } from "./hub.js";
import { qmpBox } from "./qmp-box.js";
import { serialConsole } from "./serial-console.js";

export function vmPage(name) {
  const head = h("div", { class: "vm-head" });
  const out = h("output", { class: "progress", "aria-live": "polite" });
  const buttons = new Map();
  const facts = h("dl", { class: "facts" });
  const config = h("pre", { class: "config", tabindex: "0", "aria-label": "Config" });
  const disks = h("div");
  const error = h("p", { class: "error", role: "alert" });
  let status;

  for (const action of ACTIONS) {
    const button = actionButton(action, async () => {
      const result = await runAction(action, name, out, { stopTimeout: 30 });
      if (action.id === "remove" && result !== undefined) location.hash = "#/";
      refresh();
    });
    buttons.set(action.id, button);
  }

  const paint = () => {
    if (!status) return;
    put(head, h("h1", { id: "vm-title" }, `VM ${status.name} `), badge(status.state, status.detail));
    put(
      facts,
      ...[
        ["PID", status.pid ?? "–"],
        ["Uptime", status.startedAt ? duration(Date.now() - Date.parse(status.startedAt)) : "–"],
        ["Accel", status.accelInUse ?? `${status.accel} (config)`],
        ["Memory / CPU", `${status.memory ?? "default"} / ${status.cpu ?? 1}`],
        ["QEMU", status.qemuVersion ?? "–"],
        ["Version", status.version],
        ["Defined", when(status.definedAt)],
        [
          "Last stop",
          status.lastStop
            ? `${status.lastStop.detail} at ${when(status.lastStop.at)}${status.lastStop.reason ? ` (${status.lastStop.reason})` : ""}`
            : "–",
        ],
        ["Last error", status.lastError ? `${status.lastError.reason}: ${status.lastError.message}` : "–"],
        ["Taint", status.tainted ? `${status.tainted.command}: ${status.tainted.reason}` : "none"],
      ].flatMap(([k, v]) => [h("dt", null, k), h("dd", null, String(v))]),
    );
    for (const action of ACTIONS) buttons.get(action.id).disabled = !action.when.includes(status.state);
    put(
      disks,
      status.disks.length
        ? h(
            "table",
            null,
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                ["Name", "Format", "File"].map((t) => h("th", { scope: "col" }, t)),
              ),
            ),
            h(
              "tbody",
              null,
              status.disks.map((d) =>
                h("tr", null, h("td", null, d.name), h("td", null, d.format), h("td", null, h("code", null, d.file))),
              ),
            ),
          )
        : h("p", null, "No disks."),
    );
  };

  const refresh = debounce(async () => {
    try {
      status = await call("GET", `/v1/vms/${enc(name)}`);
      put(error);
      paint();
      const at = await call("GET", `/v1/vms/${enc(name)}/history?version=${status.version}`);
      config.textContent = JSON.stringify(at.config, null, 2);
    } catch (e) {
      put(error, `${e.code}: ${e.message}`);
    }
  }, 100);

  // Snapshots.
  const snapList = h("div", { "aria-live": "polite" });
  const snapOut = h("output", { class: "progress", "aria-live": "polite" });
  const snapName = h("input", { id: "snap-name", type: "text", required: true, autocomplete: "off" });
  const loadSnapshots = async () => {
    try {
      const listing = await call("GET", `/v1/vms/${enc(name)}/snapshots`);
      const rows = [];
      for (const drive of listing.drives ?? []) {
        for (const snap of drive.snapshots ?? []) rows.push({ drive: drive.drive ?? drive.name, ...snap });
      }
      put(
        snapList,
        rows.length
          ? h(
              "table",
              null,
              h(
                "thead",
                null,
                h(
                  "tr",
                  null,
                  ["Name", "Drive", "Taken", "Actions"].map((t) => h("th", { scope: "col" }, t)),
                ),
              ),
              h(
                "tbody",
                null,
                rows.map((s) =>
                  h(
                    "tr",
                    null,
                    h("td", null, s.name ?? s.tag),
                    h("td", null, String(s.drive ?? "")),
                    h("td", null, s.date ? when(s.date) : s.createdAt ? when(s.createdAt) : "–"),
                    h(
                      "td",
                      null,
                      h(
                        "button",
                        {
                          type: "button",
                          onclick: () =>
                            snapOp("Apply", "POST", `/v1/vms/${enc(name)}/snapshots/${enc(s.name ?? s.tag)}/load`),
                        },
                        "Apply",
                      ),
                      " ",
                      h(
                        "button",
                        {
                          type: "button",
                          onclick: () =>
                            snapOp("Delete", "DELETE", `/v1/vms/${enc(name)}/snapshots/${enc(s.name ?? s.tag)}`),
                        },
                        "Delete",
                      ),
                    ),
                  ),
                ),
              ),
            )
          : h("p", null, listing.drives?.length ? "No snapshots." : "No qcow2 drive: snapshots need one."),
      );
    } catch (e) {
      // A VM without a qcow2 drive simply has no snapshots: say so, not as an error.
      if (e.code === "SNAPSHOT_UNSUPPORTED") put(snapList, h("p", { class: "hint" }, e.message));
      else put(snapList, h("p", { class: "error" }, `${e.code}: ${e.message}`));
    }
  };
  const snapOp = async (label, method, path, body) => {
    snapOut.dataset.outcome = "running";
    put(snapOut, `${label}: …`);
    try {
      const steps = [];
      await operation(method, path, body, (f) => {
        if (f.event) steps.push(f.event.type);
        if (f.progress) put(snapOut, `${label}: ${Math.round(f.progress.percent ?? 0)}% …`);
        else if (f.event) put(snapOut, `${label}: ${steps.join(" → ")} …`);
      });
      snapOut.dataset.outcome = "ok";
      put(snapOut, `${label}: ${steps.join(" → ")} ✓`);
    } catch (e) {
      snapOut.dataset.outcome = "error";
      put(snapOut, `${label}: `, h("strong", null, e.code), `: ${e.message}`);
    }
    loadSnapshots();
  };
  const snapForm = h(
    "form",
    {
      class: "inline",
      onsubmit: (e) => {
        e.preventDefault();
        snapOp("Create", "POST", `/v1/vms/${enc(name)}/snapshots`, { name: snapName.value.trim() });
      },
    },
    h("label", { for: "snap-name" }, "New snapshot name"),
    snapName,
    h("button", { type: "submit" }, "Create snapshot"),
  );

  // Screenshot.
  const shotOut = h("output", { class: "progress", "aria-live": "polite" });
  const shotImg = h("img", { class: "screen", alt: "", hidden: true });
  const shot = async () => {
    put(shotOut, "Taking a screendump…");
    try {
      const res = await fetch(`/ui/api/vms/${enc(name)}/screenshot`, { method: "POST", credentials: "same-origin" });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        throw Object.assign(new Error(body.error?.message ?? `HTTP ${res.status}`), {
          code: body.error?.code ?? res.status,
        });
      }
      const blob = await res.blob();
      if (shotImg.src) URL.revokeObjectURL(shotImg.src);
      shotImg.src = URL.createObjectURL(blob);
      shotImg.alt = `Screen of VM ${name} at ${new Date().toLocaleTimeString()}`;
      shotImg.hidden = false;
      put(shotOut, `Screendump taken at ${new Date().toLocaleTimeString()}.`);
    } catch (e) {
      put(shotOut, h("strong", null, e.code), `: ${e.message}`);
    }
  };

  const serial = serialConsole(name);
  const unsubscribe = onEvent((e) => {
    if (e === null || e.vm === name) {
      refresh();
      if (e?.type === "vm.started") serial.restart();
      if (e?.type?.startsWith("snapshot.")) loadSnapshots();
    }
  });
  const ticker = setInterval(paint, 1000);
  refresh();
  loadSnapshots();

  const el = h(
    "article",
    { class: "vm", "aria-labelledby": "vm-title" },
    h(
      "p",
      { class: "crumbs" },
      h("a", { href: "#/" }, "VMs"),
      " / ",
      name,
      " · ",
      h("a", { href: `#/vm/${enc(name)}/timeline` }, "Timeline"),
    ),
    head,
    error,
    h("div", { class: "buttons" }, [...buttons.values()]),
    out,
    h(
      "div",
      { class: "grid" },
      h("section", { "aria-labelledby": "st-title" }, h("h2", { id: "st-title" }, "Status"), facts),
      h("section", { "aria-labelledby": "cf-title" }, h("h2", { id: "cf-title" }, "Config"), config),
    ),
    h("section", { "aria-labelledby": "dk-title" }, h("h2", { id: "dk-title" }, "Disks"), disks),
    h(
      "section",
      { "aria-labelledby": "sn-title" },
      h("h2", { id: "sn-title" }, "Snapshots"),
      snapList,
      snapForm,
      snapOut,
    ),
    h("section", { "aria-labelledby": "sc-title" }, h("h2", { id: "sc-title" }, "Serial console"), serial.el),
    h(
      "section",
      { "aria-labelledby": "ss-title" },
      h("h2", { id: "ss-title" }, "Screen"),
      h("button", { type: "button", onclick: shot }, "Take screenshot"),
      shotOut,
      shotImg,
    ),
    h("section", { "aria-labelledby": "qmp-title" }, h("h2", { id: "qmp-title" }, "QMP"), qmpBox(name)),
  );
  return {
    title: `VM ${name}`,
    el,
    dispose: () => {
      unsubscribe();
      clearInterval(ticker);
      serial.stop();
      if (shotImg.src) URL.revokeObjectURL(shotImg.src);
    },
  };
}
