// The console's entry: a hash router (#/, #/vm/NAME, #/vm/NAME/timeline, #/events) over pages
// that each build their DOM and return a dispose function for their streams and timers.
import { put } from "./js/dom.js";
import { startHub } from "./js/hub.js";
import { eventsPage } from "./js/page-events.js";
import { timelinePage } from "./js/page-timeline.js";
import { vmPage } from "./js/page-vm.js";
import { vmsPage } from "./js/page-vms.js";

const main = document.getElementById("main");
let dispose = () => {};

function route() {
  dispose();
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  let page;
  let nav = "vms";
  if (parts[0] === "vm" && parts[1] && parts[2] === "timeline") page = timelinePage(parts[1]);
  else if (parts[0] === "vm" && parts[1]) page = vmPage(parts[1]);
  else if (parts[0] === "events") {
    page = eventsPage();
    nav = "events";
  } else page = vmsPage();
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  put(main, page.el);
  dispose = page.dispose ?? (() => {});
  document.title = `${page.title} · maqet console`;
  const heading = main.querySelector("h1");
  if (heading) heading.setAttribute("tabindex", "-1");
}

startHub(document.getElementById("live"));
window.addEventListener("hashchange", () => {
  route();
  main.focus();
});
route();
