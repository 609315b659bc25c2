// The serial console of a VM: GET /v1/vms/:vm/console?follow=true as JSON lines ({"text"}),
// from the start of the log (its history) then live until QEMU exits. Text goes into a <pre>
// as text nodes only: whatever the guest prints stays text.
import { enc, jsonLines } from "./api.js";
import { h, put } from "./dom.js";

const MAX_CHARS = 512 * 1024;

export function serialConsole(vm) {
  const pre = h("pre", { class: "console", role: "log", "aria-label": `Serial console of ${vm}`, tabindex: "0" });
  const state = h("p", { class: "hint", "aria-live": "polite" });
  const follow = h("input", { type: "checkbox", id: "console-follow", checked: true });
  let controller;
  let size = 0;

  const write = (text) => {
    pre.append(document.createTextNode(text));
    size += text.length;
    if (size > MAX_CHARS) {
      // Keep the tail: drop the oldest text nodes.
      while (size > MAX_CHARS / 2 && pre.firstChild) {
        size -= pre.firstChild.textContent.length;
        pre.firstChild.remove();
      }
    }
    if (follow.checked) pre.scrollTop = pre.scrollHeight;
  };

  const start = async () => {
    controller?.abort();
    controller = new AbortController();
    const mine = controller;
    put(pre);
    size = 0;
    put(state, "Following…");
    try {
      const res = await fetch(`/v1/vms/${enc(vm)}/console?follow=true`, {
        credentials: "same-origin",
        headers: { accept: "application/x-ndjson" },
        signal: mine.signal,
      });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        put(state, `No console: ${body.error?.message ?? `HTTP ${res.status}`}`);
        return;
      }
      for await (const line of jsonLines(res)) {
        if (typeof line.text === "string") write(line.text);
        else if (line.error) put(state, `Console stream error: ${line.error.message}`);
      }
      if (mine === controller)
        put(state, "QEMU is not running: the log above is the last run's. It follows again at the next start.");
    } catch (error) {
      if (error.name !== "AbortError") put(state, `Console closed: ${error.message}`);
    }
  };
  start();

  const el = h(
    "div",
    { class: "serial" },
    h("div", { class: "toolbar" }, follow, h("label", { for: "console-follow" }, "Scroll to new output")),
    pre,
    state,
  );
  return { el, restart: start, stop: () => controller?.abort() };
}
