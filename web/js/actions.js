// Lifecycle actions with their progress: each button runs the operation through the streamed
// API and shows what happens (events as they are recorded) and the resulting fact or error.
import { enc, operation } from "./api.js";
import { h, put } from "./dom.js";

/** The actions, when each makes sense, and the request each sends. */
export const ACTIONS = [
  { id: "start", label: "Start", when: ["stopped"], req: (vm) => ["POST", `/v1/vms/${enc(vm)}/start`, {}] },
  {
    id: "stop",
    label: "Stop",
    when: ["running", "paused", "starting"],
    req: (vm, o) => ["POST", `/v1/vms/${enc(vm)}/stop`, { timeout: o.stopTimeout }],
  },
  {
    id: "force-stop",
    label: "Force stop",
    when: ["running", "paused", "starting", "stopping"],
    req: (vm) => ["POST", `/v1/vms/${enc(vm)}/stop`, { force: true }],
  },
  { id: "pause", label: "Pause", when: ["running"], req: (vm) => ["POST", `/v1/vms/${enc(vm)}/pause`, {}] },
  { id: "resume", label: "Resume", when: ["paused"], req: (vm) => ["POST", `/v1/vms/${enc(vm)}/resume`, {}] },
  { id: "reset", label: "Reset", when: ["running", "paused"], req: (vm) => ["POST", `/v1/vms/${enc(vm)}/reset`, {}] },
  {
    id: "remove",
    label: "Remove",
    confirm: true,
    when: ["stopped"],
    req: (vm) => ["DELETE", `/v1/vms/${enc(vm)}`, undefined],
  },
];

/**
 * Runs one action, writing its progress into `out` (an <output>): the request, each recorded
 * event, then the result (✓ and the last fact) or the error (code and message).
 */
export async function runAction(action, vm, out, options = {}) {
  const [method, path, body] = action.req(vm, options);
  const steps = [];
  const show = (...tail) => put(out, `${action.label}: `, steps.join(" → "), ...tail);
  out.dataset.outcome = "running";
  show(steps.length ? " …" : "requested …");
  try {
    const { result, events } = await operation(method, path, body, (frame) => {
      if (frame.event) {
        steps.push(frame.event.type);
        show(" …");
      } else if (frame.progress) show(` ${Math.round(frame.progress.percent ?? 0)}% …`);
    });
    out.dataset.outcome = "ok";
    const fact = events.at(-1)?.type;
    show(steps.length ? "" : (fact ?? ""), " ✓ ", result?.state ? `now ${result.state}` : "done");
    return result;
  } catch (error) {
    out.dataset.outcome = "error";
    show(steps.length ? " → " : "", h("strong", null, error.code ?? "ERROR"), `: ${error.message}`);
    return undefined;
  }
}

/** A button that asks for a second press before a destructive action. */
export function actionButton(action, onRun) {
  let armed = false;
  let timer;
  const button = h(
    "button",
    {
      type: "button",
      class: `act act-${action.id}`,
      "data-action": action.id,
      onclick: () => {
        if (action.confirm && !armed) {
          armed = true;
          button.textContent = `Confirm ${action.label.toLowerCase()}`;
          timer = setTimeout(() => {
            armed = false;
            button.textContent = action.label;
          }, 5000);
          return;
        }
        clearTimeout(timer);
        armed = false;
        button.textContent = action.label;
        onRun();
      },
    },
    action.label,
  );
  return button;
}
