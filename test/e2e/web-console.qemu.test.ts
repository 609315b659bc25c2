/**
 * The web console (issue 12) in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core: no browser download) against a real agent process on TCP, real QEMU and the
 * kernel test guest. One browser for the file; each page's screenshot goes to docs/img/.
 *
 * Acceptance 1: log in with the printed URL; add a VM from YAML (a bad key first: its key path
 * shows); start it and see `running` arrive with no reload; pause/resume; follow the serial
 * console until the guest's marker; stop; scrub the timeline before the start and see
 * `stopped`; a refused dangerous QMP command in the audit view. 2: no cookie → 401 on pages and
 * API; wrong Origin → 403; serial text and a QMP reply with `<script>` / `<img onerror>` stay
 * text. 3: screenshots. 4: the newcomer path (`maqet demo`, then the agent, then the demo VM's
 * history on the timeline).
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { projectRoot } from "../support/build-dist.ts";
import {
  type CliSandbox,
  createCliSandbox,
  type SandboxAgent,
  startSandboxAgent,
  stopSandboxAgent,
  waitFor,
} from "../support/cli-runner.ts";
import { freePort } from "../support/free-port.ts";
import { ensureGuest, type Guest } from "../support/guest.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium)
  console.warn(`web console browser tests skipped: ${CHROMIUM} is missing (scripts/setup.sh --test installs it)`);

const IMG = join(projectRoot, "docs/img");
const WAIT = 90_000;
/** Guest text that must stay text: on the kernel command line, which the kernel prints at boot. */
const EVIL_SERIAL = "<script>window.__xss=1</script> <img src=x onerror=window.__xss=2>";

/** Form controls on the page that no label names (by <label for>, wrapping label or aria-label). */
function unlabelled(page: Page): Promise<string[]> {
  return page.evaluate(
    `[...document.querySelectorAll("input, textarea, select")]
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby"))
      .map((el) => el.outerHTML.slice(0, 80))`,
  ) as Promise<string[]>;
}

describe.skipIf(!hasChromium)("web console (real Chromium, real agent on TCP, real QEMU)", { timeout: 600_000 }, () => {
  let box: CliSandbox;
  let agent: SandboxAgent;
  let guest: Guest;
  let base: string;
  let loginUrl: string;
  let token: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    box = await createCliSandbox();
    if (box.agent) await stopSandboxAgent(box.agent); // this file runs its own agent, with --listen
    guest = await ensureGuest();
    // The newcomer path: README line 1 runs the demo (in-process), which leaves VM 'demo' and its history.
    const demo = await box.run(["demo"]);
    expect(demo.code, demo.stderr).toBe(0);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    agent = await startSandboxAgent(box.env, box.home, ["--listen", `127.0.0.1:${port}`]);
    await waitFor(async () => agent.log().includes("web console: open"), 30_000, "the login URL");
    const note = agent
      .log()
      .split("\n")
      .find((l) => l.includes("web console: open"))!;
    loginUrl = (JSON.parse(note) as { url: string }).url;
    token = (await readFile(join(box.env.XDG_RUNTIME_DIR!, "maqet", "agent.token"), "utf8")).trim();
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    await mkdir(IMG, { recursive: true });
  }, 600_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    for (const name of ["g1", "demo"]) await box?.run(["stop", name, "--force"]).catch(() => undefined);
    if (agent) await stopSandboxAgent(agent);
    await box?.cleanup();
  }, 120_000);

  it("without a session every page and API call is 401; the login URL works once; the bearer token still works", async () => {
    for (const path of ["/", "/ui/app.js", "/ui/js/page-vms.js", "/v1/vms", "/v1/events", "/nope"]) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(401);
      await res.arrayBuffer();
    }
    const wrongCookie = await fetch(`${base}/v1/vms`, {
      headers: { cookie: "maqet_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
    });
    expect(wrongCookie.status).toBe(401);
    const bearer = await fetch(`${base}/v1/vms`, { headers: { authorization: `Bearer ${token}` } });
    expect(bearer.status).toBe(200);
    expect(((await bearer.json()) as Array<{ name: string }>).map((v) => v.name)).toContain("demo");

    // The browser logs in with the printed URL: a cookie, then the console.
    await page.goto(loginUrl);
    expect(new URL(page.url()).pathname).toBe("/");
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === "maqet_session")!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/" });
    // The token in the URL was one-time.
    const again = await fetch(loginUrl, { redirect: "manual" });
    expect(again.status).toBe(401);
    expect(again.headers.get("set-cookie")).toBeNull();
    // Every page answers with a CSP that allows no inline script.
    const csp = (await fetch(`${base}/`, { headers: { cookie: `maqet_session=${session.value}` } })).headers.get(
      "content-security-policy",
    );
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
  });

  it("a state-changing request with the session cookie and a wrong (or no) Origin is 403; the right one passes", async () => {
    const session = (await context.cookies()).find((c) => c.name === "maqet_session")!;
    const cookie = `maqet_session=${session.value}`;
    const post = (headers: Record<string, string>) =>
      fetch(`${base}/v1/vms/demo/pause`, {
        method: "POST",
        headers: { cookie, "content-type": "application/json", ...headers },
        body: "{}",
      });
    const evil = await post({ origin: "http://evil.example" });
    expect(evil.status).toBe(403);
    expect(((await evil.json()) as { error: { code: string } }).error.code).toBe("ORIGIN_REFUSED");
    expect((await post({})).status).toBe(403);
    const del = await fetch(`${base}/v1/vms/demo`, {
      method: "DELETE",
      headers: { cookie, origin: "http://evil.example" },
    });
    expect(del.status).toBe(403);
    // Same origin: the request runs (demo is stopped, so pause is refused for its state, not for CSRF).
    const same = await post({ origin: base });
    expect(same.status).toBe(409);
    expect(((await same.json()) as { error: { code: string } }).error.code).toBe("VM_INVALID_STATE");
    const vms = await fetch(`${base}/v1/vms`, { headers: { cookie } });
    expect(vms.status).toBe(200);
  });

  it("newcomer path: the demo VM's history is on its timeline", async () => {
    await page.goto(`${base}/#/`);
    await page.locator('tr[data-vm="demo"]').waitFor();
    await page.locator('tr[data-vm="demo"] a').click();
    await page.locator("a", { hasText: "Timeline" }).click();
    await page.locator("#tt-title", { hasText: "Timeline of demo" }).waitFor();
    for (const type of ["vm.defined", "vm.start-requested", "vm.started", "vm.stopped"]) {
      await page.locator(`.timeline li[data-type="${type}"]`).first().waitFor();
    }
    expect(await unlabelled(page)).toEqual([]);
    await page.screenshot({ path: join(IMG, "web-timeline-demo.png"), fullPage: false });
  });

  it("snapshots of the demo VM (offline, qcow2): create, apply and delete, each with its outcome", async () => {
    await page.goto(`${base}/#/vm/demo`);
    await page.locator("#vm-title").waitFor();
    expect(await unlabelled(page)).toEqual([]);
    // Each operation ends with the output's outcome set (ok or error); the text is then checked,
    // so a refused operation fails here with its code and message, not as a locator timeout.
    const outcome = async (label: string): Promise<string> => {
      const done = page.locator('output.progress:is([data-outcome="ok"], [data-outcome="error"])', {
        hasText: `${label}: `,
      });
      await done.waitFor();
      return (await done.textContent()) ?? "";
    };
    await page.locator("#snap-name").fill("before-web");
    await page.locator("button", { hasText: "Create snapshot" }).click();
    expect(await outcome("Create")).toMatch(/Create: .*snapshot\..* ✓/);
    const row = page.locator("tr", { hasText: "before-web" });
    await row.waitFor();
    await row.locator("button", { hasText: "Apply" }).click();
    expect(await outcome("Apply")).toMatch(/Apply: .* ✓/);
    await page.locator("tr", { hasText: "before-web" }).locator("button", { hasText: "Delete" }).click();
    expect(await outcome("Delete")).toMatch(/Delete: .* ✓/);
    await page.locator("tr", { hasText: "before-web" }).waitFor({ state: "detached" });
  });

  it("add a VM from YAML (a bad key shows its path), start it, see running with no reload, pause, resume, follow the serial console, stop", async () => {
    await page.goto(`${base}/#/`);
    await page.locator("#add-yaml").waitFor();
    // A bad value first: the error names the key path.
    await page.locator("#add-yaml").fill("name: bad\nmemory: lots\n");
    await page.locator("button", { hasText: "Add VM" }).click();
    await page.locator("#add-result .key-path", { hasText: "memory" }).waitFor();
    expect(await page.locator("#add-result").textContent()).toContain("CONFIG_INVALID");

    const config = {
      name: "g1",
      binary: "qemu-system-x86_64",
      accel: "tcg",
      machine: "q35",
      memory: "256M",
      kernel: guest.kernel,
      initrd: guest.initrd,
      append: `console=ttyS0 loglevel=6 maqet.marker=WEBMARK maqet.action=idle ${EVIL_SERIAL}`,
      args: ["-device", "VGA"],
    };
    await page.locator("#add-yaml").fill(stringify(config));
    await page.locator("button", { hasText: "Add VM" }).click();
    await page.locator("#add-result a", { hasText: "g1" }).waitFor();
    const row = page.locator('tr[data-vm="g1"]');
    await row.locator(".cell-state", { hasText: "stopped" }).waitFor();

    // No reload from here on: a mark on the window survives only if the page is never reloaded.
    await page.evaluate(() => {
      (globalThis as unknown as { __noReload: boolean }).__noReload = true;
    });
    let navigations = 0;
    page.on("framenavigated", (frame) => {
      if (frame === page.mainFrame()) navigations++;
    });
    await row.locator('button[data-action="start"]').click();
    await row.locator(".cell-state", { hasText: "running" }).waitFor();
    await row.locator("output", { hasText: "vm.started" }).waitFor();
    expect(await row.locator(".cell-accel, td[data-label='Accel']").textContent()).toContain("tcg");
    await page.screenshot({ path: join(IMG, "web-vms.png") });

    await row.locator('button[data-action="pause"]').click();
    await row.locator(".cell-state", { hasText: "paused" }).waitFor();
    await row.locator('button[data-action="resume"]').click();
    await row.locator(".cell-state", { hasText: "running" }).waitFor();
    expect(await page.evaluate(() => (globalThis as unknown as { __noReload?: boolean }).__noReload)).toBe(true);
    expect(navigations).toBe(0);

    // Phone width: the same list as cards.
    await page.setViewportSize({ width: 390, height: 844 });
    // Nothing wider than the phone: tables become cards, buttons wrap.
    expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
    expect(await unlabelled(page)).toEqual([]);
    await page.screenshot({ path: join(IMG, "web-vms-phone.png"), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 860 });

    // The VM page: the serial console follows the boot until the guest's marker.
    await row.locator("a", { hasText: "g1" }).click();
    await page.locator("#vm-title").waitFor();
    await page.locator("pre.console", { hasText: "MAQET-MARKER WEBMARK" }).waitFor({ timeout: 180_000 });
    // The kernel printed its command line: the guest's <script> and <img onerror> are text, not elements.
    await page.locator("pre.console", { hasText: "<script>window.__xss=1</script>" }).waitFor();
    expect(await page.locator("pre.console").textContent()).toContain("<img src=x onerror=window.__xss=2>");
    expect(await page.locator("pre.console *").count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined();

    // A QMP reply carrying guest-controlled text (an error naming the path asked for) stays text.
    await page.locator("#qmp-command").fill("qom-get");
    await page
      .locator("#qmp-args")
      .fill(
        JSON.stringify({ path: "/<script>window.__xss=3</script>", property: "<img src=x onerror=window.__xss=4>" }),
      );
    await page.locator("form.qmp button").click();
    await page.locator("pre.qmp-reply", { hasText: "<script>window.__xss=3</script>" }).waitFor();
    expect(await page.locator("pre.qmp-reply *").count()).toBe(0);
    // A safe command answers.
    await page.locator("#qmp-command").fill("query-status");
    await page.locator("#qmp-args").fill("");
    await page.locator("form.qmp button").click();
    await page.locator("pre.qmp-reply", { hasText: '"status": "running"' }).waitFor();
    // A dangerous one is refused, and the refusal is a recorded fact.
    await page.locator("#qmp-command").fill("human-monitor-command");
    await page.locator("#qmp-args").fill(JSON.stringify({ "command-line": "info version" }));
    await page.locator("form.qmp button").click();
    await page.locator("pre.qmp-reply", { hasText: "QMP_REFUSED" }).waitFor();
    await page.locator(".qmp-fact code", { hasText: "qmp.command-rejected" }).waitFor();
    expect(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined();

    // A screenshot on demand (screendump through the agent).
    await page.locator("button", { hasText: "Take screenshot" }).click();
    await page.locator("img.screen:not([hidden])").waitFor();
    await page.waitForFunction(
      "(() => { const img = document.querySelector('img.screen'); return Boolean(img && img.complete && img.naturalWidth > 0); })()",
    );
    await page.screenshot({ path: join(IMG, "web-vm.png"), fullPage: true });

    // Stop (graceful, with its timeout): the guest powers off on the ACPI button.
    await page.locator('.vm button[data-action="stop"]').click();
    await page.locator(".vm-head .badge", { hasText: "stopped" }).waitFor({ timeout: 120_000 });
  });

  it("time travel: before vm.started the VM was starting, before vm.start-requested it was stopped", async () => {
    await page.locator("a", { hasText: "Timeline" }).click();
    await page.locator("#tt-title", { hasText: "Timeline of g1" }).waitFor();
    const started = page.locator('.timeline li[data-type="vm.started"]').first();
    await started.waitFor();
    const startedVersion = Number(await started.getAttribute("data-version"));
    // The slider, with the keyboard: from the end to the version before vm.started.
    const slider = page.locator("#tt-version");
    await slider.focus();
    await page.keyboard.press("End");
    const last = Number(await slider.inputValue());
    for (let v = last; v > startedVersion - 1; v--) await page.keyboard.press("ArrowLeft");
    expect(Number(await slider.inputValue())).toBe(startedVersion - 1);
    await page.locator(".tt-state h2", { hasText: `As of version ${startedVersion - 1}` }).waitFor();
    await page.locator(".tt-state .tt-now .badge", { hasText: "starting" }).waitFor();
    // One more step back (click the fact before vm.start-requested): stopped.
    const requested = Number(
      await page.locator('.timeline li[data-type="vm.start-requested"]').first().getAttribute("data-version"),
    );
    await page.locator(`.timeline li[data-version="${requested - 1}"] button`).click();
    await page.locator(".tt-state h2", { hasText: `As of version ${requested - 1}` }).waitFor();
    await page.locator(".tt-state .tt-now .badge", { hasText: "stopped" }).waitFor();
    // The API agrees: the same fold as `history --version`.
    const session = (await context.cookies()).find((c) => c.name === "maqet_session")!;
    const at = (await (
      await fetch(`${base}/v1/vms/g1/history?version=${requested - 1}`, {
        headers: { cookie: `maqet_session=${session.value}` },
      })
    ).json()) as { state: { state: string } };
    expect(at.state.state).toBe("stopped");
    await page.screenshot({ path: join(IMG, "web-timeline.png"), fullPage: true });
  });

  it("events and audit: the live tail filters by VM and type; the refused QMP command is in the audit trail; the chain verifies; JSONL export", async () => {
    await page.locator("nav a", { hasText: "Events" }).click();
    await page.locator("#ev-title").waitFor();
    await page.locator("#ev-vm").fill("g1");
    await page.locator("#ev-type").fill("vm.");
    await page.locator('table.events tr[data-type="vm.started"]').first().waitFor();
    const types = await page
      .locator("table.events tbody tr")
      .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-type")));
    expect(types.length).toBeGreaterThan(0);
    expect(types.every((t) => t?.startsWith("vm."))).toBe(true);
    await page.locator("#ev-vm").fill("");
    await page.locator("#ev-type").fill("");
    const refused = page.locator('table.audit tr.tone-refused[data-operation="qmp.command-rejected"]').first();
    await refused.waitFor();
    expect(await refused.textContent()).toContain("human-monitor-command");
    await page.locator(".verify", { hasText: "Hash chain verified" }).waitFor();
    expect(await unlabelled(page)).toEqual([]);
    const link = page.locator("a[download='maqet-audit.jsonl']");
    expect(await link.getAttribute("href")).toMatch(/^blob:/);
    const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
    expect(download.suggestedFilename()).toBe("maqet-audit.jsonl");
    const jsonl = await readFile((await download.path())!, "utf8");
    const lines = jsonl
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { operation: string; outcome: string });
    expect(lines.some((l) => l.operation === "qmp.command-rejected" && l.outcome === "refused")).toBe(true);
    await page.evaluate("document.getElementById('audit-title').scrollIntoView()");
    await page.screenshot({ path: join(IMG, "web-audit.png"), fullPage: false });
    await page.evaluate("window.scrollTo(0, 0)");
    await page.screenshot({ path: join(IMG, "web-events.png"), fullPage: false });
    for (const name of [
      "web-vms.png",
      "web-audit.png",
      "web-vms-phone.png",
      "web-vm.png",
      "web-timeline.png",
      "web-timeline-demo.png",
      "web-events.png",
    ]) {
      expect((await stat(join(IMG, name))).size, name).toBeGreaterThan(5_000);
    }
  });

  it("logging out ends the session: the same cookie is refused", async () => {
    const session = (await context.cookies()).find((c) => c.name === "maqet_session")!;
    await page.locator("form.logout button").click();
    await page.waitForURL(/\/login$/);
    const res = await fetch(`${base}/v1/vms`, { headers: { cookie: `maqet_session=${session.value}` } });
    expect(res.status).toBe(401);
    // The token file's token logs in again on the login page.
    await page.locator("#token").fill(token);
    await page.locator("button", { hasText: "Log in" }).click();
    await page.locator("#vms-title").waitFor();
  });
});
