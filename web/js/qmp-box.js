// A QMP box: a command and its JSON arguments, run through POST /v1/vms/:vm/qmp. The agent's
// security tiers apply as for every caller (the console never sends allow-dangerous): a
// dangerous command is refused, and the refusal is a recorded fact, shown with its position.
import { enc, operation } from "./api.js";
import { h, put } from "./dom.js";

export function qmpBox(vm) {
  const command = h("input", {
    id: "qmp-command",
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    value: "query-status",
    required: true,
  });
  const args = h("textarea", { id: "qmp-args", rows: "3", spellcheck: "false", placeholder: '{"key": "value"}' });
  const reply = h("pre", { class: "qmp-reply", "aria-live": "polite", tabindex: "0", "aria-label": "QMP reply" });
  const fact = h("p", { class: "qmp-fact", "aria-live": "polite" });
  const form = h(
    "form",
    {
      class: "qmp",
      onsubmit: async (e) => {
        e.preventDefault();
        const body = { command: command.value.trim() };
        if (args.value.trim()) {
          try {
            body.args = JSON.parse(args.value);
          } catch (error) {
            reply.dataset.outcome = "error";
            reply.textContent = `The arguments are not JSON: ${error.message}`;
            return;
          }
        }
        reply.textContent = "…";
        put(fact);
        let events = [];
        try {
          const outcome = await operation("POST", `/v1/vms/${enc(vm)}/qmp`, body);
          events = outcome.events;
          reply.dataset.outcome = "ok";
          reply.textContent = JSON.stringify(outcome.result, null, 2);
        } catch (error) {
          events = error.events ?? [];
          reply.dataset.outcome = "error";
          reply.textContent = `${error.code}: ${error.message}`;
        }
        const last = events.at(-1);
        if (last) {
          const d = last.data ?? {};
          put(
            fact,
            "Recorded: ",
            h(
              "code",
              { class: d.outcome === "refused" || last.type.endsWith("rejected") ? "tone-refused" : "" },
              last.type,
            ),
            ` at position ${last.position}`,
            d.tier ? `, tier ${d.tier}` : "",
            d.rule ? `, rule ${d.rule}` : "",
            ".",
          );
        }
      },
    },
    h("label", { for: "qmp-command" }, "Command"),
    command,
    h("label", { for: "qmp-args" }, "Arguments (JSON object, optional)"),
    args,
    h("button", { type: "submit" }, "Run"),
    h(
      "p",
      { class: "hint" },
      "Dangerous commands (human-monitor-command, inject-nmi) are refused here; the refusal is recorded in the audit trail.",
    ),
  );
  return h("div", null, form, reply, fact);
}
