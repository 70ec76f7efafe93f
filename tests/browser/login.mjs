// One OAuth login in a real browser: the system Chromium (Debian package
// `chromium`, /usr/bin/chromium), driven by npm playwright-core (which never
// downloads a browser). Used by tests/integration/test_oauth_browser.py;
// installed by scripts/setup-browser-test-env.sh (`npm ci` here).
//
//   node login.mjs '<json>'
//
// The JSON argument:
//   url          the authorization URL to open (our /oauth/authorize?...)
//   callback     the client's redirect URI: the login ends when the page is
//                there (a listener of the test answers it)
//   ourOrigin    our server's origin: a page there with
//                <button name="decision"> is our consent page
//   decision     "approve" or "deny" (the button pressed on our consent page)
//   user, password   for the provider's login form (input[name=login])
//   executablePath   the browser (default /usr/bin/chromium)
//   timeoutMs    the whole login's budget (default 15000)
//
// Prints one line of JSON on stdout and exits 0 when the browser reached
// `callback`, 1 otherwise:
//   { ok, error?, finalUrl, steps: [...], consent: { url, status, headers,
//     text } | null, navigations: [{ method, url, status }], console: [...],
//     browserVersion, ms: { launch, total } }
// `navigations` are the main frame's document responses, redirects included;
// `console` the page's console messages (a CSP violation shows up there).

import { chromium } from 'playwright-core';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const opts = JSON.parse(process.argv[2] ?? '{}');
for (const k of ['url', 'callback', 'ourOrigin', 'decision']) {
  if (!opts[k]) {
    console.log(JSON.stringify({ ok: false, error: `login.mjs: missing "${k}" in the JSON argument` }));
    process.exit(2);
  }
}
const timeoutMs = opts.timeoutMs ?? 15000;
const started = Date.now();
const out = {
  ok: false,
  finalUrl: null,
  steps: [],
  consent: null,
  navigations: [],
  console: [],
  browserVersion: null,
  ms: {},
};

let browser;
const finish = async (code) => {
  out.ms.total = Date.now() - started;
  try {
    if (browser) await browser.close();
  } catch {
    // the browser is gone already
  }
  process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(code));
};

const watchdog = setTimeout(() => {
  out.error = `no end within ${timeoutMs} ms (last URL ${out.finalUrl})`;
  finish(1);
}, timeoutMs + 2000);

const left = () => Math.max(1000, timeoutMs - (Date.now() - started));

async function main() {
  browser = await chromium.launch({
    executablePath: opts.executablePath || '/usr/bin/chromium',
    headless: true,
    args: ARGS,
    timeout: left(),
  });
  out.ms.launch = Date.now() - started;
  out.browserVersion = browser.version();
  const context = await browser.newContext(); // fresh profile: no cookies
  const page = await context.newPage();
  page.setDefaultTimeout(left());

  let lastDocument = null; // the main frame's latest non-redirect document response
  page.on('response', (r) => {
    const req = r.request();
    if (!req.isNavigationRequest() || r.frame() !== page.mainFrame()) return;
    out.navigations.push({ method: req.method(), url: r.url(), status: r.status() });
    if (r.status() < 300 || r.status() >= 400) lastDocument = r;
  });
  let blocked = () => {}; // set while a form is submitted: rejects it on a CSP violation
  page.on('console', (m) => {
    out.console.push(`${m.type()}: ${m.text()}`);
    if (m.text().includes('Content Security Policy')) blocked(m.text());
  });
  page.on('pageerror', (e) => out.console.push(`pageerror: ${e.message}`));

  // Runs `action` (a click that submits a form) and waits for the main
  // frame's next document (after any redirects) to load. A CSP violation
  // (e.g. form-action refusing the redirect after the POST) fails at once.
  const submit = async (action) => {
    const violation = new Promise((_, reject) => {
      blocked = (text) => reject(new Error(`blocked by the browser: ${text.trim()}`));
    });
    const navigated = page.waitForEvent('framenavigated', {
      predicate: (f) => f === page.mainFrame(),
      timeout: left(),
    });
    // handled here too, so a rejection during `action` is no unhandled one
    navigated.catch(() => {});
    violation.catch(() => {});
    try {
      await action();
      await Promise.race([navigated, violation]);
      await page.waitForLoadState('domcontentloaded', { timeout: left() });
    } finally {
      blocked = () => {};
    }
  };

  await page.goto(opts.url, { waitUntil: 'domcontentloaded', timeout: left() });
  for (let i = 0; i < 10; i += 1) {
    const here = page.url();
    out.finalUrl = here;
    if (here.startsWith(opts.callback)) {
      out.ok = true;
      return;
    }
    const origin = new URL(here).origin;
    if (origin === opts.ourOrigin && (await page.locator('button[name="decision"]').count()) > 0) {
      // Our consent page.
      const r = lastDocument;
      out.consent = {
        url: here,
        status: r ? r.status() : null,
        headers: r ? await r.allHeaders() : {},
        text: await page.locator('body').innerText(),
      };
      const button = page.locator(`button[name="decision"][value="${opts.decision}"]`);
      out.steps.push(`consent:${opts.decision}`);
      await submit(() => button.click());
    } else if ((await page.locator('input[name="login"]').count()) > 0) {
      // The provider's login form.
      const form = page.locator('form:has(input[name="login"])');
      await form.locator('input[name="login"]').fill(opts.user || 'alice');
      const password = form.locator('input[name="password"]');
      if ((await password.count()) > 0) await password.fill(opts.password || 'anything');
      out.steps.push('provider-login');
      await submit(() => form.locator('[type="submit"]').first().click());
    } else if ((await page.locator('form [type="submit"]').count()) > 0 && origin !== opts.ourOrigin) {
      // The provider's consent form (prompt=consent: one submit button).
      out.steps.push('provider-consent');
      await submit(() => page.locator('form [type="submit"]').first().click());
    } else {
      const text = (await page.locator('body').innerText().catch(() => '')).slice(0, 800);
      throw new Error(`unexpected page ${here}: ${JSON.stringify(text)}`);
    }
  }
  throw new Error(`no end after 10 pages (last ${page.url()})`);
}

main().then(
  () => {
    clearTimeout(watchdog);
    finish(out.ok ? 0 : 1);
  },
  (err) => {
    clearTimeout(watchdog);
    out.error = String(err && err.stack ? err.stack : err);
    finish(1);
  },
);
