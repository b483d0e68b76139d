// SPDX-License-Identifier: Apache-2.0
//
// ui_test.mjs - drives the hub's web UI in Debian's Chromium (playwright-core).
//
//   node ui_test.mjs <base-url> [--auth-url URL --token TOKEN] [--artifacts DIR]
//
// Run by tests/integration/test_ui_browser.py, which owns the hubs and NATS.
// Alerts reach the hub through NATS, published by the Python side: this
// script asks for them on stdout and reads the answer on stdin, one line each:
//
//   -> @@rpc {"op":"publish","alerts":[{"rule":..,"priority":..,"host":..,"fields":{..}}]}
//      (a field value {"$int":"<digits>"} is sent as that integer, exactly)
//   <- {"published":[{"uuid":..,"t":<ms since epoch just before the publish>, ...}]}
//   -> @@rpc {"op":"restart"}        (restart the hub at <base-url>)
//   <- {"ok":true}
//
// Ends with "@@result {...}" (measured latencies) and exit status 0, or a
// stack trace and exit status 1.
import {mkdirSync} from 'node:fs';
import {join} from 'node:path';
import readline from 'node:readline';
import {chromium} from 'playwright-core';

const argv = process.argv.slice(2);
const BASE = (argv[0] || '').replace(/\/$/, '');
const opt = (name, dflt) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : dflt;
};
const AUTH_URL = (opt('--auth-url', '') || '').replace(/\/$/, '');
const TOKEN = opt('--token', '');
const ART = opt('--artifacts', 'artifacts');
const T = 5000;                       // default wait
if (!BASE) {
    console.error('usage: node ui_test.mjs <base-url> [--auth-url URL --token T] [--artifacts DIR]');
    process.exit(2);
}
mkdirSync(ART, {recursive: true});

const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
function check(cond, msg) {
    if (!cond) throw new Error(`check failed: ${msg}`);
}

// ------------------------------------------------------------ RPC to python
const lines = readline.createInterface({input: process.stdin})[Symbol.asyncIterator]();
async function rpc(req) {
    console.log(`@@rpc ${JSON.stringify(req)}`);
    const {value, done} = await lines.next();
    if (done) throw new Error(`no answer to ${req.op}: stdin closed`);
    const r = JSON.parse(value);
    if (r.error) throw new Error(`${req.op}: ${r.error}`);
    return r;
}
const publish = async (...alerts) => (await rpc({op: 'publish', alerts})).published;

// ------------------------------------------------------------------ helpers
const row = (page, uuid) => page.locator(`[data-testid="alert-row"][data-uuid="${uuid}"]`);
const rowsIn = (page) => page.locator('[data-testid="alert-row"]');

async function waitLive(page, timeout = 10000) {
    await page.waitForFunction(() => {
        const s = document.querySelector('[data-testid="ws-status"]');
        return s && s.textContent.trim() === 'live';
    }, null, {timeout});
}

async function waitRows(page, uuids, timeout = T) {
    for (const u of uuids) await row(page, u).waitFor({state: 'visible', timeout});
}

async function waitGone(page, uuids, timeout = T) {
    for (const u of uuids) await row(page, u).waitFor({state: 'detached', timeout});
}

async function shot(page, name, fullPage = false) {
    const path = join(ART, `${name}.png`);
    await page.screenshot({path, fullPage});
    log(`screenshot ${path}`);
}

/* Records, in the page, when each feed row first enters the DOM (wall clock,
 * the same clock the Python side stamps publishes with), and every state the
 * connection indicator goes through. */
async function instrument(page) {
    await page.evaluate(() => {
        window.__seen = window.__seen || {};
        window.__wsStates = [];
        const rows = document.getElementById('feed-rows');
        new MutationObserver((muts) => {
            const now = Date.now();
            for (const m of muts) {
                for (const n of m.addedNodes) {
                    const u = n.nodeType === 1 && n.getAttribute('data-uuid');
                    if (u && !(u in window.__seen)) window.__seen[u] = now;
                }
            }
        }).observe(rows, {childList: true});
        const st = document.querySelector('[data-testid="ws-status"]');
        new MutationObserver(() => window.__wsStates.push(st.dataset.state))
            .observe(st, {attributes: true, attributeFilter: ['data-state']});
    });
}

/* Waits until GET /api/v1/alerts lists every uuid; their order there. */
async function waitInApi(uuids, timeout = 10000) {
    const end = Date.now() + timeout;
    for (;;) {
        const got = (await getJSON('/api/v1/alerts?limit=1000&since=1h')).alerts.map((a) => a.uuid);
        if (uuids.every((u) => got.includes(u))) return got.filter((u) => uuids.includes(u));
        check(Date.now() < end, `alerts never reached GET /api/v1/alerts: ${uuids.filter((u) => !got.includes(u))}`);
        await new Promise((r) => setTimeout(r, 100));
    }
}

async function getJSON(path) {
    const r = await fetch(BASE + path);
    check(r.ok, `GET ${path}: HTTP ${r.status}`);
    return r.json();
}

// ------------------------------------------------------------------- alerts
let nAlert = 0;
function spec(rule, priority, host, ns, pod, extra = {}) {
    nAlert++;
    const fields = {'proc.cmdline': `bash -c "echo ${nAlert}"`, 'container.name': `c-${nAlert}`};
    if (ns) fields['k8s.ns.name'] = ns;
    if (pod) fields['k8s.pod.name'] = pod;
    return {rule, priority, host, fields: {...fields, ...extra}};
}
const SHELL = 'Terminal shell in container';
const PRIV = 'Launch privileged container';
const READ = 'Read sensitive file untrusted';
const XSS = '<img src=x onerror="window.__xss=1">';

// --------------------------------------------------------------------- main
async function main() {
    const result = {latency_ms: []};
    const browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        headless: true,
        // playwright-core gives each launch a fresh temporary --user-data-dir
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
            '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const pageErrors = [];
    const watch = (page, name) => {
        page.on('pageerror', (e) => pageErrors.push(`${name}: ${e.message}`));
        // the hub serves the UI with a Content-Security-Policy: nothing may trip it
        page.on('console', (m) => {
            if (/Content Security Policy|Refused to/.test(m.text())) pageErrors.push(`${name}: ${m.text()}`);
        });
    };
    try {
        // ---- history: alerts already in the stream fill the feed on load
        const hist = await publish(spec(READ, 'Notice', 'node-h', 'hist', 'h-0'),
            spec(READ, 'Warning', 'node-h', 'hist', 'h-1'),
            spec(READ, 'Error', 'node-h', 'hist', 'h-2'));
        const histIds = hist.map((a) => a.uuid);
        const apiOrder = await waitInApi(histIds);

        const ctx = await browser.newContext({viewport: {width: 1366, height: 860}, colorScheme: 'light'});
        const page = await ctx.newPage();
        watch(page, 'desktop');
        const resp = await page.goto(`${BASE}/`);
        check(resp && resp.ok(), `GET / answered ${resp && resp.status()}`);
        check(new URL(page.url()).pathname === '/ui/', `GET / from a browser should land on /ui/, got ${page.url()}`);
        await instrument(page);
        await waitLive(page);
        await waitRows(page, histIds);
        // newest first, as the stream has them (two hubs ingest in parallel,
        // so that need not be the order of publishing)
        const order = await rowsIn(page).evaluateAll((rs) => rs.map((r) => r.getAttribute('data-uuid')));
        const shown = order.filter((u) => histIds.includes(u));
        check(JSON.stringify(shown) === JSON.stringify(apiOrder),
            `history order ${shown} differs from GET /api/v1/alerts ${apiOrder}`);
        log('history: 3 alerts shown newest first');

        // ---- 1. live alerts via NATS appear within 1 s
        const live = await publish(
            spec(SHELL, 'Critical', 'node-a', 'shop', 'web-1',
                {'proc.cmdline': `bash -c ${XSS}`, 'proc.name': 'bash', 'user.name': 'root',
                    'proc.start_ns': {$int: '1700000000123456789'}}),
            spec(READ, 'Notice', 'node-b', 'kube-system', 'coredns-1'),
            spec(PRIV, 'Warning', 'node-a', 'shop', 'db-0'),
            spec('Outbound connection to C2 server', 'Error', 'node-c', 'shop', 'api-2'),
            spec('Crypto miner started', 'Emergency', 'node-c', 'batch', 'job-7'));
        const [A, B, C, D, E] = live;
        await waitRows(page, live.map((a) => a.uuid), 3000);
        const seen = await page.evaluate(() => window.__seen);
        for (const a of live) result.latency_ms.push(Math.round(seen[a.uuid] - a.t));
        log(`feed latency publish->row (ms): ${result.latency_ms.join(', ')}`);
        for (const l of result.latency_ms) check(l < 1000, `an alert took ${l} ms to reach the feed (limit 1000)`);
        check(await row(page, A.uuid).getAttribute('data-priority') === 'Critical', 'row A priority');
        check(await row(page, E.uuid).getAttribute('data-priority') === 'Emergency', 'row E priority');
        const colours = await page.evaluate((ids) => ids.map((u) => getComputedStyle(
            document.querySelector(`[data-uuid="${u}"] .badge`)).backgroundColor), [A.uuid, B.uuid, C.uuid]);
        check(new Set(colours).size === 3, `priority badges should differ in colour: ${colours}`);
        const top5 = await rowsIn(page).evaluateAll((rs) => rs.slice(0, 5).map((r) => r.dataset.uuid));
        check(live.every((a) => top5.includes(a.uuid)), 'live alerts go on top of the history');
        await shot(page, 'feed');

        // ---- 2. filters (server-side on the feed and on the history list)
        await page.getByTestId('filter-priority').selectOption('critical');
        await waitGone(page, [B.uuid, C.uuid, D.uuid]);
        await waitRows(page, [A.uuid, E.uuid]);
        const prios = await rowsIn(page).evaluateAll((rs) => rs.map((r) => r.dataset.priority));
        check(prios.every((p) => ['Emergency', 'Alert', 'Critical'].includes(p)), `min Critical shows ${prios}`);
        // the live feed is filtered too: the Notice published first never shows
        const [N2, C2] = await publish(spec(READ, 'Notice', 'node-b', 'kube-system', 'coredns-2'),
            spec(SHELL, 'Critical', 'node-b', 'shop', 'web-2'));
        await waitRows(page, [C2.uuid]);
        await waitInApi([N2.uuid]);
        await page.waitForTimeout(300);
        check(await row(page, N2.uuid).count() === 0, 'a Notice reached the feed under min priority Critical');
        log('filter: min priority Critical hides Notice (history and live)');

        await page.getByTestId('filter-clear').click();
        await waitRows(page, [B.uuid, C.uuid, D.uuid, N2.uuid]);
        await page.getByTestId('filter-rule').fill('*privileged*');
        await page.getByTestId('filter-rule').press('Enter');
        await waitGone(page, [A.uuid, B.uuid]);
        await waitRows(page, [C.uuid]);
        const rules = await rowsIn(page).locator('td.rule').allTextContents();
        check(rules.length >= 1 && rules.every((r) => r === PRIV), `rule filter shows ${rules}`);
        await page.getByTestId('filter-clear').click();
        await waitRows(page, [A.uuid, B.uuid]);
        await page.getByTestId('filter-q').fill('coredns');
        await page.getByTestId('filter-q').press('Enter');
        await waitGone(page, [A.uuid, C.uuid]);
        await waitRows(page, [B.uuid, N2.uuid]);
        await page.getByTestId('filter-clear').click();
        await page.getByTestId('filter-node').fill('node-c');
        await page.getByTestId('filter-namespace').fill('batch');
        await page.getByTestId('filter-namespace').press('Enter');
        await waitGone(page, [A.uuid, D.uuid]);
        await waitRows(page, [E.uuid]);
        await page.getByTestId('filter-clear').click();
        await waitRows(page, [...live, ...hist, C2, N2].map((a) => a.uuid));
        log('filter: rule, text, node+namespace narrow the list; clearing restores it');

        // ---- pause / resume
        await page.getByTestId('pause-button').click();
        const [P] = await publish(spec(PRIV, 'Warning', 'node-p', 'shop', 'paused-0'));
        await page.waitForFunction(() => document.querySelector('[data-testid="paused-count"]').dataset.count === '1',
            null, {timeout: T});
        check(await row(page, P.uuid).count() === 0, 'a row was added while paused');
        check(await page.getByTestId('paused-count').isVisible(), 'paused counter visible');
        await shot(page, 'feed-paused');
        await page.getByTestId('pause-button').click();
        await waitRows(page, [P.uuid]);
        check(!(await page.getByTestId('paused-count').isVisible()), 'paused counter hidden after resume');
        log('pause buffers events with a counter; resume shows them');

        // ---- 3. detail: click, Enter, deep link; fields, tags, raw JSON, audit
        await row(page, A.uuid).locator('td.output').click();
        await page.waitForURL(`**/ui/#/alert/${A.uuid}`);
        const det = page.getByTestId('alert-detail');
        await det.waitFor({state: 'visible', timeout: T});
        const fieldVal = (k) => det.locator(`[data-testid="detail-fields"] tr[data-field="${k}"] td`);
        await fieldVal('k8s.pod.name').waitFor({timeout: T});
        check(await fieldVal('k8s.pod.name').textContent() === 'web-1', 'detail k8s.pod.name');
        check(await fieldVal('proc.cmdline').textContent() === `bash -c ${XSS}`,
            'detail proc.cmdline shows the attacker string as text');
        check(await det.locator('[data-testid="detail-top"] tr[data-field="uuid"] td').textContent() === A.uuid,
            'detail uuid');
        check((await det.getByTestId('detail-tags').locator('li').allTextContents()).includes('shell'), 'tags');
        // 64-bit integers are shown exactly, not rounded to a double
        check(await fieldVal('proc.start_ns').textContent() === '1700000000123456789', 'proc.start_ns exact');
        const rawText = await det.getByTestId('detail-raw').textContent();
        const raw = JSON.parse(rawText);
        check(raw.uuid === A.uuid && raw.output_fields['k8s.pod.name'] === 'web-1', 'raw JSON');
        check(rawText.includes('"proc.start_ns": 1700000000123456789'), 'raw JSON keeps proc.start_ns exact');
        // the dry-run responder's decision shows up in the audit trail (the
        // view re-reads it every 5 s; reload to not wait for that)
        let audited = false;
        for (let i = 0; i < 20 && !audited; i++) {
            audited = await det.getByTestId('audit-row').count() > 0;
            if (!audited) {
                await new Promise((r) => setTimeout(r, 500));
                if (i % 4 === 3) await page.reload();
            }
        }
        check(audited, 'no responder audit record in the detail view');
        const auditText = await det.getByTestId('detail-audit').textContent();
        check(auditText.includes('ui-dry-run') && auditText.includes('dry_run'), `audit row: ${auditText}`);
        check(await page.evaluate(() => window.__xss) === undefined, 'attacker markup ran');
        await shot(page, 'detail', true);
        log('detail: fields, tags, raw JSON and audit trail');

        await page.goto(`${BASE}/ui/#/`);
        await waitLive(page);
        await row(page, C.uuid).focus();
        await page.keyboard.press('Enter');
        await page.waitForURL(`**/ui/#/alert/${C.uuid}`);
        await fieldVal('k8s.pod.name').waitFor({timeout: T});
        check(await fieldVal('k8s.pod.name').textContent() === 'db-0', 'Enter on a row opens its detail');
        const deep = await ctx.newPage();
        watch(deep, 'deep-link');
        await deep.goto(`${BASE}/ui/#/alert/${D.uuid}`);
        await deep.locator('[data-testid="detail-fields"] tr[data-field="k8s.pod.name"] td')
            .filter({hasText: 'api-2'}).waitFor({timeout: T});
        await deep.close();
        log('detail: Enter key and #/alert/<uuid> deep link');

        // ---- 4. dashboard and outputs
        await page.goto(`${BASE}/ui/#/dashboard`);
        const dash = page.getByTestId('dashboard');
        await dash.waitFor({state: 'visible', timeout: T});
        await page.waitForFunction(() => {
            const n = document.querySelector('[data-testid="stats-total-count"]');
            return n && parseInt(n.textContent.replace(/\D/g, ''), 10) >= 11;
        }, null, {timeout: T});
        const crit = Number(await page.getByTestId('total-Critical').getAttribute('data-count'));
        check(crit >= 2, `dashboard Critical total ${crit}`);
        check(await page.getByTestId('stats-bar').count() >= 1, 'no bars in the chart');
        await page.getByTestId('top-rules').getByText(SHELL, {exact: true}).waitFor({timeout: T});
        await page.getByTestId('top-nodes').getByText('node-a', {exact: true}).waitFor({timeout: T});
        await page.getByTestId('top-namespaces').getByText('shop', {exact: true}).waitFor({timeout: T});
        check(await page.getByTestId('top-pods').getByTestId('top-row').count() >= 1, 'top pods empty');
        await shot(page, 'dashboard', true);
        await page.getByTestId('range-24h').click();
        await page.waitForFunction(() => /in 24h/.test(document.querySelector('[data-testid="stats-total"]').textContent),
            null, {timeout: T});
        check(await page.getByTestId('stats-bar').count() >= 1, 'no bars in the 24h chart');
        log(`dashboard: totals (Critical ${crit}), chart, top lists, range selector`);

        await page.goto(`${BASE}/ui/#/outputs`);
        const out = page.locator('[data-testid="output-row"][data-name="hook"]');
        await out.waitFor({state: 'visible', timeout: T});
        check(await out.locator('td').nth(1).textContent() === 'webhook', 'output type');
        check(await out.locator('.status').getAttribute('data-status') === 'ok', 'output status ok');
        await page.waitForFunction(() => {
            const r = document.querySelector('[data-testid="output-row"][data-name="hook"]');
            return r && parseInt(r.children[5].textContent.replace(/\D/g, ''), 10) >= 11;
        }, null, {timeout: 8000});
        await shot(page, 'outputs');
        log('outputs: the webhook output "hook" is listed, ok, with its deliveries');

        await page.goto(`${BASE}/ui/#/audit`);
        await page.getByTestId('audit-record').filter({hasText: 'ui-dry-run'}).first()
            .waitFor({state: 'visible', timeout: T});
        await shot(page, 'audit');
        log('audit: responder decisions listed');

        // ---- reconnect: the hub restarts, the feed comes back by itself
        await page.goto(`${BASE}/ui/#/`);
        await instrument(page);
        await waitLive(page);
        await rpc({op: 'restart'});
        await page.waitForFunction(() => window.__wsStates.includes('closed') &&
            document.querySelector('[data-testid="ws-status"]').textContent.trim() === 'live',
        null, {timeout: 15000});
        const [R] = await publish(spec(SHELL, 'Critical', 'node-r', 'shop', 'after-restart'));
        await waitRows(page, [R.uuid]);
        log('reconnect: the feed went live again after a hub restart');

        // ---- theme toggle, persisted
        const bg = (p) => p.evaluate(() => {
            const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/\d+/g).map(Number);
            return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
        });
        check(await bg(page) > 0.7, 'light theme by default in a light browser');
        await page.getByTestId('theme-toggle').click();
        check(await bg(page) < 0.2, 'theme toggle to dark');
        await page.reload();
        check(await bg(page) < 0.2, 'dark theme persisted over a reload');
        await page.getByTestId('theme-toggle').click();
        await page.getByTestId('theme-toggle').click();
        check(await page.getByTestId('theme-toggle').getAttribute('data-theme') === 'auto', 'back to auto');
        await ctx.close();

        // ---- 5. dark mode from the system, phone viewport
        const dark = await browser.newContext({viewport: {width: 1280, height: 800}, colorScheme: 'dark'});
        const dp = await dark.newPage();
        watch(dp, 'dark');
        await dp.goto(`${BASE}/ui/`);
        await waitLive(dp);
        await waitRows(dp, [R.uuid]);
        check(await bg(dp) < 0.2, 'prefers-color-scheme: dark gives a dark page');
        await shot(dp, 'dark');
        await dp.goto(`${BASE}/ui/#/alert/${A.uuid}`);
        await dp.getByTestId('detail-raw').waitFor({timeout: T});
        await shot(dp, 'dark-detail');
        await dp.goto(`${BASE}/ui/#/dashboard`);
        await dp.getByTestId('stats-bar').first().waitFor({timeout: T});
        await shot(dp, 'dark-dashboard');
        await dark.close();

        const phone = await browser.newContext({viewport: {width: 390, height: 844}, isMobile: true,
            hasTouch: true, deviceScaleFactor: 2, colorScheme: 'light'});
        const pp = await phone.newPage();
        watch(pp, 'phone');
        await pp.goto(`${BASE}/ui/`);
        await waitLive(pp);
        await waitRows(pp, [R.uuid]);
        const layout = await pp.evaluate(() => ({
            scroll: document.documentElement.scrollWidth,
            display: getComputedStyle(document.querySelector('[data-testid="alert-row"]')).display,
            thead: getComputedStyle(document.querySelector('.feed thead')).display,
            nav: getComputedStyle(document.getElementById('nav')).display,
        }));
        check(layout.scroll <= 391, `the phone feed scrolls sideways (${layout.scroll}px)`);
        check(layout.display === 'grid' && layout.thead === 'none', `feed rows are cards: ${JSON.stringify(layout)}`);
        check(layout.nav === 'none', 'nav is collapsed on a phone');
        await shot(pp, 'phone');
        await pp.getByTestId('nav-toggle').tap();
        await pp.getByTestId('nav-dashboard').waitFor({state: 'visible', timeout: T});
        await shot(pp, 'phone-nav');
        await pp.getByTestId('nav-dashboard').tap();
        await pp.getByTestId('stats-bar').first().waitFor({timeout: T});
        check(await pp.evaluate(() => document.documentElement.scrollWidth) <= 391, 'phone dashboard scrolls sideways');
        await shot(pp, 'phone-dashboard', true);
        await pp.goto(`${BASE}/ui/#/`);
        await row(pp, A.uuid).locator('td.rule').tap();
        await pp.getByTestId('detail-raw').waitFor({timeout: T});
        await shot(pp, 'phone-detail', true);
        await phone.close();
        log('phone (390x844) and dark mode render');

        // ---- 6. auth: login page, bad then good token, live feed
        if (AUTH_URL) {
            const actx = await browser.newContext({viewport: {width: 1280, height: 800}});
            const ap = await actx.newPage();
            watch(ap, 'auth');
            const r401 = await ap.goto(`${AUTH_URL}/ui/`);
            check(r401.status() === 401, `an unauthenticated /ui/ should answer 401, got ${r401.status()}`);
            await ap.getByTestId('login-token').waitFor({state: 'visible', timeout: T});
            await shot(ap, 'login');
            await ap.getByTestId('login-token').fill('not-the-token');
            await ap.getByTestId('login-submit').click();
            await ap.getByTestId('login-error').filter({hasText: 'invalid credentials'}).waitFor({timeout: T});
            await ap.getByTestId('login-token').fill(TOKEN);
            await Promise.all([ap.waitForEvent('load'), ap.getByTestId('login-submit').click()]);
            await waitLive(ap);
            await waitRows(ap, [R.uuid]);
            check(!(await ap.evaluate(() => document.cookie)).includes('klaxon_session'),
                'the session cookie should be HttpOnly');
            await shot(ap, 'auth-live');
            // a session that ends under an open page: the next API call
            // brings up the sign-in form in place
            await ap.evaluate(() => fetch('/api/v1/session', {method: 'DELETE'}));
            await ap.getByTestId('nav-outputs').click();
            await ap.getByTestId('login-token').waitFor({state: 'visible', timeout: T});
            await shot(ap, 'login-expired');
            await ap.getByTestId('login-token').fill(TOKEN);
            await Promise.all([ap.waitForEvent('load'), ap.getByTestId('login-submit').click()]);
            check(new URL(ap.url()).hash === '#/outputs', `still on the outputs view: ${ap.url()}`);
            await ap.getByTestId('outputs-updated').filter({hasText: 'updated'}).waitFor({timeout: T});
            await waitLive(ap);
            // logging out brings the login page back
            await Promise.all([ap.waitForEvent('load'), ap.getByTestId('logout').click()]);
            await ap.getByTestId('login-token').waitFor({state: 'visible', timeout: T});
            await actx.close();
            log('auth: 401 login page, "invalid credentials", token login goes live, expired session, logout');
        }

        check(pageErrors.length === 0, `uncaught errors in the page: ${pageErrors.join('; ')}`);
    } finally {
        await browser.close();
    }
    result.max_latency_ms = Math.max(...result.latency_ms);
    result.seconds = (Date.now() - t0) / 1000;
    console.log(`@@result ${JSON.stringify(result)}`);
    log('PASS');
}

main().then(() => process.exit(0), (e) => {
    console.log(`FAIL: ${e.stack || e}`);
    process.exit(1);
});
