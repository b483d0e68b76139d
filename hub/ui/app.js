// SPDX-License-Identifier: Apache-2.0
//
// app.js - Klaxon's web UI: live feed over /ws, alert detail, dashboard,
// output health and responder audit, on the API in docs/api.md.
//
// Alert data is attacker-controlled (rule names, command lines, pod names):
// it only ever reaches the DOM through textContent and setAttribute, never
// innerHTML. Routes live in the URL hash (#/, #/alert/<uuid>, #/dashboard,
// #/outputs, #/audit) so every view can be linked to.

const PRIORITIES = ['Emergency', 'Alert', 'Critical', 'Error', 'Warning', 'Notice',
    'Informational', 'Debug'];
const PRIO_VAR = Object.fromEntries(PRIORITIES.map((p) => [p, `var(--p-${p.toLowerCase()})`]));
const FEED_MAX_ROWS = 1000;      // rows kept in the DOM
const PAUSE_MAX = 5000;          // events buffered while paused
const HISTORY_LIMIT = 100;       // alerts fetched on load and per "Load older"
const OUTPUTS_EVERY_MS = 5000;
const STATS_EVERY_MS = 10000;
const DETAIL_EVERY_MS = 5000;
const FILTER_KEYS = ['rule', 'tag', 'node', 'namespace', 'pod'];
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ helpers

/* el('td', {class: 'x', 'data-uuid': u}, 'text', childNode): attributes via
 * setAttribute, strings as text nodes. The only way this file builds DOM. */
function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
        if (v === undefined || v === null || v === false) continue;
        e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
        if (c === undefined || c === null || c === false) continue;
        e.append(c instanceof Node ? c : String(c));
    }
    return e;
}

function svg(tag, attrs) {
    const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
}

function prioName(p) {
    if (typeof p !== 'string') return 'Debug';
    const l = p.toLowerCase();
    if (l === 'info') return 'Informational';
    return PRIORITIES.find((x) => x.toLowerCase() === l) || p;
}

function badge(priority) {
    const p = prioName(priority);
    return el('span', {class: 'badge', 'data-priority': p}, p);
}

function pad(n, w = 2) { return String(n).padStart(w, '0'); }

function parseTime(s) {
    if (!s) return null;
    const d = new Date(s);
    return isNaN(d) ? null : d;
}

/* Local time, date only when not today. */
function fmtTime(s, withDate) {
    const d = parseTime(s);
    if (!d) return s ? String(s) : '';
    const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    const today = new Date();
    if (!withDate && d.toDateString() === today.toDateString()) return hms;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hms}`;
}

function fmtAgo(s) {
    const d = parseTime(s);
    if (!d) return '';
    const sec = Math.round((Date.now() - d.getTime()) / 1000);
    if (sec < 0) return 'just now';
    if (sec < 60) return `${sec} s ago`;
    if (sec < 3600) return `${Math.floor(sec / 60)} min ago`;
    if (sec < 86400) return `${Math.floor(sec / 3600)} h ago`;
    return `${Math.floor(sec / 86400)} d ago`;
}

function timeEl(s, withDate) {
    return el('time', {datetime: s || null, title: s || null}, fmtTime(s, withDate));
}

function fmtNum(n) {
    return typeof n === 'number' ? n.toLocaleString() : (n === undefined || n === null ? '' : String(n));
}

/* Integers beyond 2^53 (proc.start_ns, inode numbers) would be rounded by
 * JSON.parse; where the browser can (JSON.rawJSON and the reviver's source
 * text), they are kept as raw JSON numbers, exact in the text and in the
 * pretty-printed JSON. */
const HAS_RAW_JSON = typeof JSON.rawJSON === 'function' && typeof JSON.isRawJSON === 'function';

function keepBigInts(key, value, ctx) {
    if (HAS_RAW_JSON && typeof value === 'number' && !Number.isSafeInteger(value) && ctx &&
        typeof ctx.source === 'string' && /^-?\d+$/.test(ctx.source)) {
        return JSON.rawJSON(ctx.source);
    }
    return value;
}

function parseJSON(text) {
    return JSON.parse(text, keepBigInts);
}

function valueText(v) {
    if (v === null) return 'null';
    if (HAS_RAW_JSON && JSON.isRawJSON(v)) return v.rawJSON;
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
}

function showError(node, msg) {
    node.textContent = msg || '';
    node.hidden = !msg;
}

function fields(a) {
    return (a && typeof a.output_fields === 'object' && a.output_fields) || {};
}

// ---------------------------------------------------------------------- API

class ApiError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
}

/* fetch() a JSON API route; a 401 anywhere brings up the login form. */
async function api(path, opts = {}) {
    let r;
    try {
        r = await fetch(path, {credentials: 'same-origin', cache: 'no-store', ...opts,
            headers: {Accept: 'application/json', ...(opts.headers || {})}});
    } catch (e) {
        throw new ApiError(0, `cannot reach the hub (${e.message})`);
    }
    if (r.status === 401) {
        showLogin();
        throw new ApiError(401, 'authentication required');
    }
    if (r.status === 204) return null;
    let body = null;
    const text = await r.text();
    try { body = text ? parseJSON(text) : null; } catch (e) { body = null; }
    if (!r.ok) {
        const why = body && body.error ? body.error : text.slice(0, 200);
        throw new ApiError(r.status, `${path.split('?')[0]}: HTTP ${r.status}${why ? ': ' + why : ''}`);
    }
    if (body === null) throw new ApiError(r.status, `${path.split('?')[0]}: not JSON`);
    return body;
}

// -------------------------------------------------------------- login/logout

let loginShown = false;

function showLogin() {
    if (loginShown) return;
    loginShown = true;
    $('login').hidden = false;
    setWsStatus('closed', 'signed out');
    ws.stop();
    $('login-form').elements.token.focus();
}

async function submitLogin(ev) {
    ev.preventDefault();
    const f = ev.target.elements;
    const body = f.token.value ? {token: f.token.value}
        : {username: f.username.value, password: f.password.value};
    showError($('login-error'), '');
    try {
        const r = await fetch('/api/v1/session', {method: 'POST', credentials: 'same-origin',
            headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
        if (r.status === 204 || r.ok) {
            location.reload();
        } else if (r.status === 401) {
            showError($('login-error'), 'invalid credentials');
        } else {
            showError($('login-error'), `sign-in failed: HTTP ${r.status}`);
        }
    } catch (e) {
        showError($('login-error'), `cannot reach the hub (${e.message})`);
    }
}

async function logout() {
    try { await fetch('/api/v1/session', {method: 'DELETE', credentials: 'same-origin'}); }
    catch (e) { /* reload anyway */ }
    location.reload();
}

// -------------------------------------------------------------------- theme

const THEMES = ['auto', 'dark', 'light'];

function applyTheme(t) {
    if (t === 'dark' || t === 'light') document.documentElement.dataset.theme = t;
    else delete document.documentElement.dataset.theme;
    const b = $('theme-toggle');
    b.textContent = `Theme: ${t}`;
    b.setAttribute('data-theme', t);
}

function initTheme() {
    let t = 'auto';
    try { t = localStorage.getItem('klaxon.theme') || 'auto'; } catch (e) { /* private mode */ }
    applyTheme(THEMES.includes(t) ? t : 'auto');
    $('theme-toggle').addEventListener('click', () => {
        const cur = $('theme-toggle').getAttribute('data-theme');
        const next = THEMES[(THEMES.indexOf(cur) + 1) % THEMES.length];
        try { localStorage.setItem('klaxon.theme', next); } catch (e) { /* not persisted */ }
        applyTheme(next);
    });
}

// ------------------------------------------------------------------ filters

/* The feed's filter, in the shape of the WebSocket filter message. */
let filter = {};

function readFilterForm() {
    const f = $('filters').elements;
    const out = {};
    if (f.priority.value) out.priority = f.priority.value;
    for (const k of FILTER_KEYS) {
        const vals = f[k].value.split(',').map((s) => s.trim()).filter(Boolean);
        if (vals.length) out[k] = vals;
    }
    const q = f.q.value.trim();
    if (q) out.q = q;
    return out;
}

function writeFilterForm(fl) {
    const f = $('filters').elements;
    f.priority.value = fl.priority || '';
    for (const k of FILTER_KEYS) f[k].value = (fl[k] || []).join(', ');
    f.q.value = fl.q || '';
}

function filterQuery(fl, extra) {
    const p = new URLSearchParams();
    if (fl.priority) p.append('priority', fl.priority);
    for (const k of FILTER_KEYS) for (const v of fl[k] || []) p.append(k, v);
    if (fl.q) p.append('q', fl.q);
    for (const [k, v] of Object.entries(extra || {})) if (v !== undefined && v !== null) p.append(k, v);
    return p.toString();
}

function filterSummary(fl) {
    const parts = [];
    if (fl.priority) parts.push(`≥ ${prioName(fl.priority)}`);
    for (const k of FILTER_KEYS) if (fl[k]) parts.push(`${k} ${fl[k].join('|')}`);
    if (fl.q) parts.push(`"${fl.q}"`);
    return parts.length ? `(${parts.join(', ')})` : '';
}

function setFilter(fl) {
    filter = fl;
    writeFilterForm(fl);
    $('filter-summary').textContent = filterSummary(fl);
    feed.paused = false;
    feed.pausedBuf = [];
    feed.pausedDropped = 0;
    updatePauseUi();
    ws.setFilter(fl);
}

// --------------------------------------------------------------- WebSocket

/* The live feed connection: reconnects with backoff, carries the filter in
 * the URL on connect and as a {"filter":...} message afterwards. */
const ws = {
    sock: null,
    hello: false,          // hello received on this socket
    backoff: 500,
    timer: null,
    stopped: false,
    ackTimer: null,
    awaitingAck: false,    // events before the server's "filter" answer use the old filter

    url() {
        const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
        return `${proto}//${location.host}/ws?${filterQuery(filter, {kind: 'alert'})}`;
    },

    connect() {
        clearTimeout(this.timer);
        if (this.stopped) return;
        this.hello = false;
        this.awaitingAck = false;
        setWsStatus('connecting', 'connecting');
        let s;
        try {
            s = new WebSocket(this.url());
        } catch (e) {
            this.retry(false);
            return;
        }
        this.sock = s;
        s.onmessage = (m) => { if (this.sock === s) this.onMessage(m.data); };
        s.onclose = () => {
            if (this.sock !== s) return;
            this.sock = null;
            const hadHello = this.hello;
            this.hello = false;
            this.retry(hadHello);
        };
        s.onerror = () => { /* onclose follows */ };
    },

    retry(hadHello) {
        if (this.stopped) return;
        if (hadHello) this.backoff = 500;
        const wait = Math.min(this.backoff, 30000) * (0.75 + Math.random() * 0.5);
        this.backoff = Math.min(this.backoff * 2, 30000);
        setWsStatus('closed', `reconnecting in ${Math.ceil(wait / 1000)} s`);
        this.timer = setTimeout(() => this.connect(), wait);
        // A refused handshake says nothing about why: ask the API, which
        // brings up the login form on 401.
        if (!hadHello) api('/api/v1/outputs').catch(() => {});
    },

    stop() {
        this.stopped = true;
        clearTimeout(this.timer);
        if (this.sock) { const s = this.sock; this.sock = null; s.close(); }
    },

    setFilter(fl) {
        if (this.sock && this.hello && this.sock.readyState === WebSocket.OPEN) {
            const msg = {kind: 'alert'};
            if (fl.priority) msg.priority = fl.priority;
            for (const k of FILTER_KEYS) if (fl[k]) msg[k] = fl[k];
            if (fl.q) msg.q = fl.q;
            this.awaitingAck = true;
            this.sock.send(JSON.stringify({filter: msg}));
            feed.beginLoad();        // buffer from now, fetch once the hub answers
            clearTimeout(this.ackTimer);
            this.ackTimer = setTimeout(() => this.onAck(), 2000);
        } else {
            // not live: reconnect now with the new filter in the URL; history
            // is loaded on hello (or now, if the hub cannot be reached)
            if (this.sock) { const s = this.sock; this.sock = null; s.close(); }
            this.backoff = 500;
            this.connect();
            feed.reload();
        }
    },

    onAck() {
        clearTimeout(this.ackTimer);
        if (!this.awaitingAck) return;
        this.awaitingAck = false;
        feed.reload();
    },

    onMessage(data) {
        let m;
        try { m = parseJSON(data); } catch (e) { return; }
        switch (m.type) {
        case 'hello':
            this.hello = true;
            this.backoff = 500;
            setWsStatus('live', 'live');
            feed.reload();
            break;
        case 'events':
            if (this.awaitingAck) return;   // sent under the previous filter
            for (const ev of m.events || []) {
                if (ev && ev.alert && (ev.kind === 'alert' || ev.kind === undefined)) feed.live(ev.alert);
            }
            break;
        case 'skipped':
            feed.skipped(m.missed, m.from, m.to);
            break;
        case 'filter':
            this.onAck();
            break;
        case 'error':
            showError($('feed-error'), `live feed: ${m.error || 'error'}`);
            this.onAck();
            break;
        default:
            break;
        }
    },
};

function setWsStatus(state, text) {
    const s = $('ws-status');
    s.dataset.state = state;
    s.textContent = text;
}

// --------------------------------------------------------------------- feed

const feed = {
    byUuid: new Map(),     // uuid -> alert, for the rows in the DOM
    loading: false,        // history being fetched: live events go to liveBuf
    liveBuf: [],
    gen: 0,
    next: null,            // cursor for "Load older"
    trimmed: false,        // rows were dropped at the bottom: the cursor no longer follows on
    paused: false,
    pausedBuf: [],
    pausedDropped: 0,
    renderQ: [],           // live events waiting for the next frame
    renderScheduled: false,
    skippedTotal: 0,

    beginLoad() {
        this.loading = true;
        this.gen++;
    },

    /* Fills the list with history (newest first) for the current filter,
     * then adds the live events that arrived meanwhile. */
    async reload() {
        this.beginLoad();
        const gen = this.gen;
        this.liveBuf = [];
        let r;
        try {
            r = await api(`/api/v1/alerts?${filterQuery(filter, {limit: HISTORY_LIMIT})}`);
            showError($('feed-error'), '');
        } catch (e) {
            if (gen !== this.gen) return;
            if (e.status !== 401) showError($('feed-error'), `history: ${e.message}`);
            r = {alerts: [], next: null};
        }
        if (gen !== this.gen) return;
        this.clear();
        this.append(r.alerts || []);
        this.next = r.next || null;
        this.loading = false;
        const buf = this.liveBuf;
        this.liveBuf = [];
        for (const a of buf) this.live(a);
        this.flush();
        this.updateCount();
    },

    clear() {
        $('feed-rows').replaceChildren();
        this.byUuid.clear();
        this.trimmed = false;
        this.renderQ = [];
    },

    live(a) {
        if (!a || typeof a !== 'object') return;
        if (this.loading) {
            this.liveBuf.push(a);
            if (this.liveBuf.length > PAUSE_MAX) this.liveBuf.shift();
            return;
        }
        if (this.paused) {
            this.pausedBuf.push(a);
            if (this.pausedBuf.length > PAUSE_MAX) {
                this.pausedBuf.shift();
                this.pausedDropped++;
            }
            updatePauseUi();
            return;
        }
        this.renderQ.push(a);
        // more than a screenful per frame would be trimmed anyway
        if (this.renderQ.length > FEED_MAX_ROWS) this.renderQ.splice(0, this.renderQ.length - FEED_MAX_ROWS);
        this.schedule();
    },

    schedule() {
        if (this.renderScheduled) return;
        this.renderScheduled = true;
        const go = () => { if (this.renderScheduled) this.flush(); };
        requestAnimationFrame(go);
        setTimeout(go, 100);   // rAF does not run in background tabs
    },

    /* Prepends queued live events (oldest first in the queue). */
    flush() {
        this.renderScheduled = false;
        const q = this.renderQ;
        this.renderQ = [];
        if (!q.length) return;
        const frag = document.createDocumentFragment();
        for (let i = q.length - 1; i >= 0; i--) {
            const a = q[i];
            if (!a.uuid || this.byUuid.has(a.uuid)) continue;
            this.byUuid.set(a.uuid, a);
            const tr = row(a);
            tr.classList.add('fresh');
            frag.append(tr);
        }
        $('feed-rows').prepend(frag);
        this.trim();
        this.updateCount();
    },

    /* Appends older alerts at the bottom (history is newest first). */
    append(alerts) {
        const frag = document.createDocumentFragment();
        for (const a of alerts) {
            if (!a || !a.uuid || this.byUuid.has(a.uuid)) continue;
            if (this.byUuid.size >= FEED_MAX_ROWS) break;
            this.byUuid.set(a.uuid, a);
            frag.append(row(a));
        }
        $('feed-rows').append(frag);
    },

    trim() {
        const body = $('feed-rows');
        while (body.rows.length > FEED_MAX_ROWS) {
            const last = body.lastElementChild;
            this.byUuid.delete(last.getAttribute('data-uuid'));
            last.remove();
            this.trimmed = true;
        }
    },

    async older() {
        if (!this.next || this.trimmed) return;
        const gen = this.gen;
        try {
            const r = await api(`/api/v1/alerts?${filterQuery(filter, {limit: HISTORY_LIMIT, cursor: this.next})}`);
            if (gen !== this.gen) return;
            this.append(r.alerts || []);
            this.next = r.next || null;
        } catch (e) {
            if (e.status !== 401) showError($('feed-error'), `history: ${e.message}`);
        }
        this.updateCount();
    },

    skipped(missed, from, to) {
        this.skippedTotal += Number(missed) || 0;
        $('skipped-text').textContent = `Skipped ${fmtNum(this.skippedTotal)} events: this browser fell behind the feed` +
            (from !== undefined ? ` (last gap: ${from}..${to})` : '');
        $('skipped').hidden = false;
    },

    updateCount() {
        const n = this.byUuid.size;
        $('feed-count').textContent = `${fmtNum(n)} alert${n === 1 ? '' : 's'} shown`;
        $('feed-empty').hidden = n > 0 || this.loading;
        $('feed-more').hidden = !this.next || this.trimmed || n >= FEED_MAX_ROWS;
    },
};

function row(a) {
    const f = fields(a);
    const p = prioName(a.priority);
    const where = [f['k8s.ns.name'], f['k8s.pod.name']].filter((x) => x !== undefined && x !== null && x !== '').join('/');
    const href = `#/alert/${encodeURIComponent(a.uuid)}`;
    return el('tr', {'data-testid': 'alert-row', 'data-uuid': a.uuid, 'data-priority': p, tabindex: 0,
        'aria-label': `${p}: ${a.rule || ''}`},
    el('td', {class: 'time'}, timeEl(a.time)),
    el('td', {class: 'prio'}, badge(p)),
    el('td', {class: 'rule'}, el('a', {href, tabindex: -1}, a.rule || '(no rule)')),
    el('td', {class: 'node'}, a.hostname || ''),
    el('td', {class: 'where'}, where),
    el('td', {class: 'output', title: a.output || null}, a.output || ''));
}

function updatePauseUi() {
    const b = $('pause');
    b.textContent = feed.paused ? 'Resume' : 'Pause';
    b.setAttribute('aria-pressed', feed.paused ? 'true' : 'false');
    const c = $('paused-count');
    c.hidden = !feed.paused;
    c.textContent = `${fmtNum(feed.pausedBuf.length)} new while paused` +
        (feed.pausedDropped ? ` (${fmtNum(feed.pausedDropped)} older dropped)` : '');
    c.dataset.count = String(feed.pausedBuf.length);
}

function togglePause() {
    if (!feed.paused) {
        feed.paused = true;
    } else {
        feed.paused = false;
        const buf = feed.pausedBuf;
        feed.pausedBuf = [];
        feed.pausedDropped = 0;
        for (const a of buf) feed.live(a);
        feed.flush();
    }
    updatePauseUi();
}

function openRow(tr) {
    const u = tr && tr.getAttribute('data-uuid');
    if (u) location.hash = `#/alert/${encodeURIComponent(u)}`;
}

// ------------------------------------------------------------------- detail

const detail = {uuid: null, timer: null, auditKey: ''};

function kvTable(pairs, testid) {
    const t = el('table', {class: 'kv', 'data-testid': testid});
    const b = el('tbody');
    for (const [k, v] of pairs) {
        b.append(el('tr', {'data-field': k}, el('th', {scope: 'row'}, k),
            el('td', {}, v instanceof Node ? v : valueText(v))));
    }
    t.append(b);
    return t;
}

function card(title, testid, ...body) {
    return el('section', {class: 'card', 'data-testid': testid}, el('h2', {}, title), ...body);
}

function auditSection(records) {
    if (!records) return card('Responder audit', 'detail-audit', el('p', {class: 'muted'}, 'Loading…'));
    if (!records.length) {
        return card('Responder audit', 'detail-audit',
            el('p', {class: 'muted', 'data-testid': 'audit-empty'}, 'No responder has acted on this alert.'));
    }
    const body = el('tbody');
    for (const r of records) {
        const f = fields(r);
        const actions = Array.isArray(r.actions) ? r.actions : [];
        const act = actions.length
            ? el('details', {class: 'actions'},
                el('summary', {}, actions.map((x) => `${x.type || '?'}: ${x.result || '?'}`).join(', ')),
                el('pre', {class: 'raw'}, JSON.stringify(actions, null, 2)))
            : el('span', {class: 'muted'}, 'none');
        body.append(el('tr', {'data-testid': 'audit-row', 'data-result': f['klaxon.result'] || ''},
            el('td', {}, timeEl(r.time, true)),
            el('td', {}, f['klaxon.responder'] || ''),
            el('td', {}, el('span', {class: 'result', 'data-result': f['klaxon.result'] || ''},
                f['klaxon.result'] || '')),
            el('td', {}, f['klaxon.target'] || ''),
            el('td', {}, f['klaxon.reason'] || ''),
            el('td', {}, act)));
    }
    return card('Responder audit', 'detail-audit', el('div', {class: 'scrollx'},
        el('table', {class: 'grid'},
            el('thead', {}, el('tr', {}, ...['Time', 'Responder', 'Result', 'Target', 'Reason', 'Actions']
                .map((h) => el('th', {scope: 'col'}, h)))),
            body)));
}

function renderDetail(a, audit) {
    const f = fields(a);
    const p = prioName(a.priority);
    $('detail-h').textContent = a.rule || '(no rule)';
    const top = [];
    const known = ['uuid', 'time', 'priority', 'rule', 'source', 'hostname', 'output', 'tags'];
    top.push(['uuid', a.uuid]);
    top.push(['time', el('span', {}, timeEl(a.time, true), ' ', el('span', {class: 'muted'}, `(${a.time || ''})`))]);
    top.push(['priority', badge(p)]);
    top.push(['rule', a.rule]);
    top.push(['source', a.source]);
    top.push(['hostname', a.hostname]);
    top.push(['output', el('span', {class: 'output-text'}, a.output || '')]);
    const tags = Array.isArray(a.tags) ? a.tags : [];
    top.push(['tags', tags.length ? el('ul', {class: 'tags', 'data-testid': 'detail-tags'},
        ...tags.map((t) => el('li', {}, valueText(t)))) : el('span', {class: 'muted'}, 'none')]);
    for (const [k, v] of Object.entries(a)) {
        if (!known.includes(k) && k !== 'output_fields') top.push([k, v]);
    }
    const fieldPairs = Object.keys(f).sort().map((k) => [k, f[k]]);
    $('detail-body').replaceChildren(
        el('div', {class: 'detail-head'}, badge(p), el('span', {class: 'muted'}, a.hostname || ''),
            el('span', {class: 'muted'}, fmtTime(a.time, true))),
        el('div', {class: 'cards'},
            card('Alert', 'detail-summary', kvTable(top, 'detail-top')),
            card('Output fields', 'detail-fields-card', fieldPairs.length
                ? kvTable(fieldPairs, 'detail-fields')
                : el('p', {class: 'muted', 'data-testid': 'detail-fields'}, 'No output fields.'))),
        el('div', {id: 'detail-audit-slot'}, auditSection(audit)),
        card('Raw JSON', 'detail-raw-card', el('pre', {class: 'raw', 'data-testid': 'detail-raw'},
            JSON.stringify(a, null, 2))));
}

async function loadDetail(uuid, first) {
    try {
        const r = await api(`/api/v1/alerts/${encodeURIComponent(uuid)}`);
        if (detail.uuid !== uuid) return;
        showError($('detail-error'), '');
        const audit = Array.isArray(r.audit) ? r.audit : [];
        const key = JSON.stringify([r.alert, audit]);
        if (first || key !== detail.auditKey) {
            // only redraw on change, so an open <details> or a selection survives
            if (first || !$('detail-audit-slot')) renderDetail(r.alert || {}, audit);
            else $('detail-audit-slot').replaceChildren(auditSection(audit));
            detail.auditKey = key;
        }
    } catch (e) {
        if (detail.uuid !== uuid || e.status === 401) return;
        if (e.status === 404) showError($('detail-error'), `No alert ${uuid} in the stream (it may have aged out).`);
        else showError($('detail-error'), e.message);
    }
}

function showDetail(uuid) {
    detail.uuid = uuid;
    detail.auditKey = '';
    clearInterval(detail.timer);
    showError($('detail-error'), '');
    if (!UUID_RE.test(uuid)) {
        $('detail-h').textContent = 'Alert';
        $('detail-body').replaceChildren();
        showError($('detail-error'), `"${uuid}" is not an alert id (a UUID).`);
        return;
    }
    const cached = feed.byUuid.get(uuid);
    if (cached) renderDetail(cached, null);
    else {
        $('detail-h').textContent = 'Alert';
        $('detail-body').replaceChildren(el('p', {class: 'muted'}, 'Loading…'));
    }
    loadDetail(uuid, true);
    detail.timer = setInterval(() => loadDetail(uuid, false), DETAIL_EVERY_MS);
}

// ---------------------------------------------------------------- dashboard

const dash = {range: '1h', timer: null, gen: 0, series: null};

/* The chart is drawn at the width it is shown at, so text keeps its size. */
function redrawChart() {
    const svgEl = document.querySelector('#dash-chart svg');
    if (!dash.series || !svgEl || $('view-dashboard').hidden) return;
    svgEl.replaceWith(chart(dash.series, $('dash-chart').clientWidth));
}

function niceMax(n) {
    if (n <= 5) return Math.max(n, 1);
    const mag = Math.pow(10, Math.floor(Math.log10(n)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= n) return m * mag;
    return 10 * mag;
}

function hhmm(s) {
    const d = parseTime(s);
    return d ? `${pad(d.getHours())}:${pad(d.getMinutes())}` : '';
}

/* A stacked bar per bucket, most severe at the bottom. */
function chart(series, width) {
    const W = Math.max(Math.round(width) || 800, 300), H = 220, L = 44, R = 8, T = 10, B = 26;
    const s = svg('svg', {viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-testid': 'stats-svg',
        'aria-label': 'Alerts per time bucket, stacked by priority'});
    const sums = series.map((b) => PRIORITIES.reduce((t, p) => t + ((b.counts || {})[p] || 0), 0));
    const max = niceMax(Math.max(0, ...sums));
    const plotH = H - T - B, plotW = W - L - R;
    for (const frac of [0, 0.5, 1]) {
        const y = T + plotH * (1 - frac);
        s.append(svg('line', {class: 'axis', x1: L, x2: W - R, y1: y, y2: y}));
        const t = svg('text', {x: L - 6, y: y + 4, 'text-anchor': 'end'});
        t.textContent = String(Math.round(max * frac * 10) / 10);
        s.append(t);
    }
    const n = Math.max(series.length, 1);
    const bw = plotW / n;
    const gap = bw > 6 ? Math.min(2, bw * 0.15) : 0;
    series.forEach((b, i) => {
        let y = T + plotH;
        const x = L + i * bw + gap / 2;
        for (const p of PRIORITIES) {
            const c = (b.counts || {})[p] || 0;
            if (!c) continue;
            const h = (c / max) * plotH;
            y -= h;
            const r = svg('rect', {x: x.toFixed(2), y: y.toFixed(2), width: Math.max(bw - gap, 0.5).toFixed(2),
                height: Math.max(h, 0.5).toFixed(2), 'data-priority': p, 'data-testid': 'stats-bar'});
            r.style.fill = PRIO_VAR[p];
            const title = svg('title');
            title.textContent = `${fmtTime(b.time)}  ${p}: ${c}`;
            r.append(title);
            s.append(r);
        }
    });
    const labels = series.length ? [0, Math.floor((series.length - 1) / 2), series.length - 1] : [];
    for (const i of new Set(labels)) {
        const t = svg('text', {x: (L + i * bw + bw / 2).toFixed(1), y: H - 8,
            'text-anchor': i === 0 ? 'start' : (i === series.length - 1 ? 'end' : 'middle')});
        t.textContent = hhmm(series[i].time);
        s.append(t);
    }
    return s;
}

function topTable(title, items, testid, toFilter) {
    const body = el('tbody');
    for (const it of items || []) {
        const name = it && it.name !== undefined ? String(it.name) : '';
        let cell = name;
        if (toFilter) {
            cell = el('a', {href: '#/'}, name);
            cell.addEventListener('click', (ev) => {
                ev.preventDefault();
                setFilter(toFilter(name));
                location.hash = '#/';
            });
        }
        body.append(el('tr', {'data-testid': 'top-row'}, el('td', {class: 'name'}, cell),
            el('td', {class: 'num'}, fmtNum(it && it.count))));
    }
    if (!body.firstChild) body.append(el('tr', {}, el('td', {class: 'muted', colspan: 2}, 'none')));
    return card(title, testid, el('table', {class: 'grid'},
        el('thead', {}, el('tr', {}, el('th', {scope: 'col'}, 'Name'), el('th', {scope: 'col', class: 'num'}, 'Count'))),
        body));
}

async function loadStats() {
    const gen = ++dash.gen;
    let st;
    try {
        st = await api(`/api/v1/stats?${new URLSearchParams({since: dash.range})}`);
    } catch (e) {
        if (gen === dash.gen && e.status !== 401) showError($('dash-error'), e.message);
        return;
    }
    if (gen !== dash.gen) return;
    showError($('dash-error'), '');
    const by = st.by_priority || {};
    const totals = [el('div', {class: 'total', 'data-testid': 'stats-total'},
        el('div', {class: 'n', 'data-testid': 'stats-total-count'}, fmtNum(st.total || 0)),
        el('div', {class: 'l'}, `alerts in ${dash.range}`))];
    for (const p of PRIORITIES) {
        totals.push(el('div', {class: 'total', 'data-priority': p, 'data-testid': `total-${p}`,
            'data-count': by[p] || 0},
        el('div', {class: 'n'}, fmtNum(by[p] || 0)), el('div', {class: 'l'}, p)));
    }
    if (st.audit !== undefined) {
        totals.push(el('div', {class: 'total', 'data-testid': 'stats-audit'},
            el('div', {class: 'n'}, fmtNum(st.audit)), el('div', {class: 'l'}, 'responder decisions')));
    }
    $('dash-totals').replaceChildren(...totals);
    const series = Array.isArray(st.series) ? st.series : [];
    dash.series = series;
    $('dash-chart').replaceChildren(chart(series, $('dash-chart').clientWidth),
        el('ul', {class: 'legend'}, ...PRIORITIES.map((p) => el('li', {'data-priority': p}, p))));
    let cap = `${fmtTime(st.since, true)} – ${fmtTime(st.until, true)}, ${st.bucket || '?'} buckets`;
    const cs = parseTime(st.complete_since), since = parseTime(st.since);
    if (cs && since && cs > since) cap += `; counts before ${fmtTime(st.complete_since, true)} are incomplete`;
    $('dash-caption').textContent = cap;
    const top = st.top || {};
    $('dash-tops').replaceChildren(
        topTable('Top rules', top.rules, 'top-rules', (n) => ({rule: [n]})),
        topTable('Top nodes', top.nodes, 'top-nodes', (n) => ({node: [n]})),
        topTable('Top namespaces', top.namespaces, 'top-namespaces', (n) => ({namespace: [n]})),
        topTable('Top pods', top.pods, 'top-pods', null));
}

// ------------------------------------------------------------------ outputs

async function loadOutputs() {
    let r;
    try {
        r = await api('/api/v1/outputs');
    } catch (e) {
        if (e.status !== 401) showError($('out-error'), e.message);
        return;
    }
    showError($('out-error'), '');
    const rows = (r.outputs || []).map((o) => el('tr', {'data-testid': 'output-row', 'data-name': o.name,
        'data-status': o.status},
    el('td', {class: 'name'}, o.name),
    el('td', {}, o.type),
    el('td', {}, el('span', {class: 'status', 'data-status': o.status}, o.status)),
    el('td', {class: 'num'}, fmtNum(o.lag)),
    el('td', {class: 'num'}, fmtNum(o.ack_pending)),
    el('td', {class: 'num'}, fmtNum(o.delivered)),
    el('td', {class: 'num'}, fmtNum(o.failed)),
    el('td', {class: 'num'}, fmtNum(o.deadlettered)),
    el('td', {}, o.last_success ? el('time', {datetime: o.last_success, title: o.last_success},
        fmtAgo(o.last_success)) : el('span', {class: 'muted'}, 'never')),
    el('td', {}, o.last_error ? el('span', {},
        o.last_error, o.last_error_time ? el('span', {class: 'muted'}, ` (${fmtAgo(o.last_error_time)})`) : null)
        : el('span', {class: 'muted'}, '—'))));
    if (!rows.length) rows.push(el('tr', {}, el('td', {colspan: 10, class: 'muted'}, 'No outputs configured.')));
    $('out-rows').replaceChildren(...rows);
    $('out-updated').textContent = `updated ${fmtTime(new Date().toISOString())}, every ${OUTPUTS_EVERY_MS / 1000} s`;
}

// -------------------------------------------------------------------- audit

const auditView = {next: null, gen: 0};

function auditQuery(cursor) {
    const f = $('audit-filters').elements;
    const p = new URLSearchParams({limit: String(HISTORY_LIMIT)});
    for (const v of f.responder.value.split(',').map((s) => s.trim()).filter(Boolean)) p.append('responder', v);
    if (f.result.value) p.append('result', f.result.value);
    if (cursor) p.append('cursor', cursor);
    return p.toString();
}

async function loadAudit(more) {
    const gen = more ? auditView.gen : ++auditView.gen;
    let r;
    try {
        r = await api(`/api/v1/audit?${auditQuery(more ? auditView.next : null)}`);
    } catch (e) {
        if (gen === auditView.gen && e.status !== 401) showError($('audit-error'), e.message);
        return;
    }
    if (gen !== auditView.gen) return;
    showError($('audit-error'), '');
    const rows = (r.records || []).map((rec) => {
        const f = fields(rec);
        const au = f['klaxon.alert_uuid'];
        return el('tr', {'data-testid': 'audit-record'},
            el('td', {}, timeEl(rec.time, true)),
            el('td', {}, f['klaxon.responder'] || ''),
            el('td', {}, el('span', {class: 'result', 'data-result': f['klaxon.result'] || ''}, f['klaxon.result'] || '')),
            el('td', {}, f['klaxon.target'] || ''),
            el('td', {}, f['klaxon.reason'] || ''),
            el('td', {}, au ? el('a', {href: `#/alert/${encodeURIComponent(au)}`}, f['klaxon.alert_rule'] || au) : ''));
    });
    if (more) $('audit-rows').append(...rows);
    else $('audit-rows').replaceChildren(...rows);
    if (!$('audit-rows').firstChild) {
        $('audit-rows').append(el('tr', {}, el('td', {colspan: 6, class: 'muted'}, 'No responder decisions.')));
    }
    auditView.next = r.next || null;
    $('audit-more').hidden = !auditView.next;
}

// ------------------------------------------------------------------- router

const timers = {outputs: null, stats: null};

function route() {
    const h = location.hash || '#/';
    let view = 'feed', arg = null;
    const m = h.match(/^#\/alert\/(.+)$/);
    if (m) { view = 'detail'; arg = decodeURIComponent(m[1]); }
    else if (h === '#/dashboard') view = 'dashboard';
    else if (h === '#/outputs') view = 'outputs';
    else if (h === '#/audit') view = 'audit';
    for (const v of ['feed', 'detail', 'dashboard', 'outputs', 'audit']) $(`view-${v}`).hidden = v !== view;
    for (const a of document.querySelectorAll('nav a')) {
        if (a.dataset.view === view || (view === 'detail' && a.dataset.view === 'feed')) a.setAttribute('aria-current', 'page');
        else a.removeAttribute('aria-current');
    }
    $('nav').classList.remove('open');
    $('navtoggle').setAttribute('aria-expanded', 'false');
    clearInterval(timers.outputs);
    clearInterval(timers.stats);
    if (view !== 'detail') { clearInterval(detail.timer); detail.uuid = null; }
    const titles = {feed: 'Live feed', detail: 'Alert', dashboard: 'Dashboard', outputs: 'Outputs', audit: 'Audit'};
    document.title = `Klaxon – ${titles[view]}`;
    if (view === 'detail') showDetail(arg);
    if (view === 'dashboard') { loadStats(); timers.stats = setInterval(loadStats, STATS_EVERY_MS); }
    if (view === 'outputs') { loadOutputs(); timers.outputs = setInterval(loadOutputs, OUTPUTS_EVERY_MS); }
    if (view === 'audit') loadAudit(false);
}

// --------------------------------------------------------------------- boot

function init() {
    initTheme();
    $('navtoggle').addEventListener('click', () => {
        const open = $('nav').classList.toggle('open');
        $('navtoggle').setAttribute('aria-expanded', open ? 'true' : 'false');
    });
    $('logout').addEventListener('click', logout);
    $('login-form').addEventListener('submit', submitLogin);

    const form = $('filters');
    form.addEventListener('submit', (ev) => { ev.preventDefault(); setFilter(readFilterForm()); });
    form.elements.priority.addEventListener('change', () => setFilter(readFilterForm()));
    $('filter-clear').addEventListener('click', () => setFilter({}));
    if (window.matchMedia('(max-width: 760px)').matches) $('filters-box').open = false;

    $('pause').addEventListener('click', togglePause);
    $('skipped-dismiss').addEventListener('click', () => { $('skipped').hidden = true; });
    $('feed-more').addEventListener('click', () => feed.older());
    const rows = $('feed-rows');
    rows.addEventListener('click', (ev) => {
        if (ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
        const tr = ev.target.closest('tr[data-uuid]');
        if (!tr) return;
        ev.preventDefault();
        openRow(tr);
    });
    rows.addEventListener('keydown', (ev) => {
        if (ev.key !== 'Enter' && ev.key !== ' ') return;
        const tr = ev.target.closest('tr[data-uuid]');
        if (!tr) return;
        ev.preventDefault();
        openRow(tr);
    });

    for (const b of document.querySelectorAll('#view-dashboard .range button')) {
        b.addEventListener('click', () => {
            dash.range = b.dataset.range;
            for (const o of document.querySelectorAll('#view-dashboard .range button')) {
                o.setAttribute('aria-pressed', o === b ? 'true' : 'false');
            }
            loadStats();
        });
    }
    $('audit-filters').addEventListener('submit', (ev) => { ev.preventDefault(); loadAudit(false); });
    $('audit-more').addEventListener('click', () => loadAudit(true));

    let resizeTimer = null;
    window.addEventListener('resize', () => {
        clearTimeout(resizeTimer);
        resizeTimer = setTimeout(redrawChart, 150);
    });
    window.addEventListener('hashchange', route);
    route();
    updatePauseUi();
    feed.updateCount();
    ws.connect();
    // history arrives with the WebSocket's hello; if the feed cannot connect,
    // show it anyway
    setTimeout(() => { if (!ws.hello && !loginShown) feed.reload(); }, 1500);
}

init();
