// The live view of the floor. It reads the node's public API with the tab's
// token: it follows the event log (a JSON long-poll, since EventSource cannot
// send an Authorization header), resumes from the last event id it saw, and
// re-reads the panels when events come (at most every REFRESH_MIN_MS) and
// at least every REFRESH_IDLE_MS (waits and windows move with time). Any
// node answers every read, so a leader change only delays it; on an error it
// retries the same node. It never writes.
'use strict';

(function () {
  const TOKEN_KEY = 'omnirouter.token';
  const CHANNELS = ['chat', 'messaging', 'email', 'voice'];
  const REFRESH_MIN_MS = 500;
  // A re-read that takes long (a large floor, a slow link) spaces the next
  // ones: at most about a tenth of the time is spent re-reading.
  const REFRESH_COST_SHARE = 10;
  const REFRESH_IDLE_MS = 5000;
  const STALE_AFTER_MS = 15000; // no complete update for this long: stale
  const EVENTS_WAIT = '10s';
  const EVENTS_LIMIT = 1000;
  // After a batch, the next long-poll waits this long so that a busy floor
  // costs a few polls a second, not one per event.
  const EVENTS_GATHER_MS = 250;
  const EVENTS_TIMEOUT_MS = 25000;
  const READ_TIMEOUT_MS = 10000;
  const RETRY_MIN_MS = 500;
  const RETRY_MAX_MS = 5000;
  // Bounds on what one screen shows: the API's answers grow with the floor.
  const QUEUE_LIMIT = 200;
  const MAX_AGENT_ROWS = 500;
  const MAX_EVENTS = 30;
  const MAX_MESSAGES = 100;
  const MAX_IDS = 8;
  // An event id beyond any the node has: it answers 400 cursor_ahead with
  // newest_id, where following starts.
  const BEYOND_NEWEST = '18446744073709551615';

  // What each cause says of the agents it counts ("2 agents offline").
  const CAUSES = {
    offline: 'offline',
    away: 'away',
    transfers_only: 'taking transfers only',
    waiting_for_end_user: 'not offered it: the ticket waits for the end user',
    missing_skill: 'missing a required skill',
    other_group: 'in other groups',
    waiting_for_skills_timeout: 'lacking optional skills until the skills timeout',
    focus_mode: 'busy on another real-time channel (focus mode)',
    no_capacity: 'with no spare capacity',
    already_missed: 'who missed it already (offered it only when nobody else is eligible)',
    external_mode: 'eligible, waiting for the routing engine to assign',
  };

  const $ = (sel) => document.querySelector(sel);

  let token = null; // null until given; '' is a valid token (no auth file)
  let session = 0; // bumped on every (re)connect: older loops stop
  let sessionAbort = new AbortController();
  let cursor = null; // the last event id seen
  let lastOK = 0; // when every panel was last read successfully
  let selected = ''; // the conversation shown
  let data = {};
  let problems = {}; // per source, why its last request failed
  let notes = {}; // per source, a note for its panel (not permitted, not found)
  let refreshTimer = 0;
  let refreshing = false;
  let refreshAgain = false;
  let lastRefresh = 0;
  let refreshCost = 0; // how long the last re-read took
  const recent = []; // the newest events first

  // --- small helpers -------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'onclick') el.addEventListener('click', v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  const pad = (n) => String(n).padStart(2, '0');

  function clock(t) {
    const d = new Date(t);
    if (Number.isNaN(d.getTime())) return '';
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  function dur(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + pad(s % 60) + 's';
    return Math.floor(s / 3600) + 'h ' + pad(Math.floor(s / 60) % 60) + 'm';
  }

  function pause(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  function describe(r) {
    const e = r.body && r.body.error;
    return e && e.code ? r.status + ' ' + e.code + (e.message ? ': ' + e.message : '') : 'HTTP ' + r.status;
  }

  // brief is describe without the message, for the status line.
  function brief(r) {
    const e = r.body && r.body.error;
    return 'HTTP ' + r.status + (e && e.code ? ' ' + e.code : '');
  }

  function unreachable(err) {
    return err && err.name === 'AbortError' ? 'the node did not answer in time' : 'the node cannot be reached';
  }

  // api GETs a path of the API (relative to the page, so that a proxy
  // prefix is kept) and returns {status, body}; it throws when no answer
  // came (network error, timeout, or a new session).
  async function api(path, timeoutMs) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    const stop = () => ctl.abort();
    const sig = sessionAbort.signal;
    sig.addEventListener('abort', stop, { once: true });
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    try {
      const res = await fetch('../' + path, { headers, signal: ctl.signal, cache: 'no-store', credentials: 'omit' });
      let body = null;
      try {
        body = await res.json();
      } catch (err) {
        if (res.ok) throw err; // a 200 cut short: no answer
      }
      return { status: res.status, body };
    } finally {
      clearTimeout(timer);
      sig.removeEventListener('abort', stop);
    }
  }

  // --- status: live or stale -----------------------------------------------

  function setProblem(source, why) {
    if (why) problems[source] = why;
    else delete problems[source];
    showStatus();
  }

  function setNote(source, text) {
    if (text) notes[source] = text;
    else delete notes[source];
    for (const sec of document.querySelectorAll('section[data-sources]')) {
      const texts = sec.dataset.sources.split(' ').map((s) => notes[s]).filter(Boolean);
      const el = sec.querySelector('[data-note]');
      const t = [...new Set(texts)].join(' ');
      if (el.textContent !== t) el.textContent = t;
    }
  }

  function showStatus() {
    const el = $('#status');
    const why = Object.values(problems)[0];
    let state;
    let text;
    if (token === null) {
      state = 'refused';
      text = 'Not connected';
    } else if (why) {
      state = 'stale';
      text = 'Stale: ' + why + ' (retrying)' + (lastOK ? '; last update ' + clock(lastOK) : '');
    } else if (!lastOK) {
      state = 'connecting';
      text = 'Connecting…';
    } else if (Date.now() - lastOK > STALE_AFTER_MS) {
      state = 'stale';
      text = 'Stale: no update since ' + clock(lastOK);
    } else {
      state = 'live';
      text = 'Live';
    }
    if (el.dataset.state !== state) el.dataset.state = state;
    if (el.textContent !== text) el.textContent = text;
    document.body.classList.toggle('stale', state === 'stale');
    const upd = $('#updated');
    const u = lastOK ? 'updated ' + clock(lastOK) : '';
    if (upd.textContent !== u) upd.textContent = u;
  }

  // ticks moves every running wait under root on by the time since it
  // began; tick does it for the whole page every second.
  function ticks(root) {
    const now = Date.now();
    for (const el of root.querySelectorAll('[data-since]')) {
      const t = dur((now - Number(el.dataset.since)) / 1000);
      if (el.textContent !== t) el.textContent = t;
    }
  }

  // since is when a wait began on this browser's clock, to the second, so
  // that two reads of the same wait render the same.
  function since(readAt, waitSeconds) {
    return Math.round((readAt - waitSeconds * 1000) / 1000) * 1000;
  }

  function tick() {
    const now = Date.now();
    ticks(document);
    showStatus();
    if (token !== null && now - lastRefresh >= REFRESH_IDLE_MS) wantRefresh();
  }

  // --- connecting ------------------------------------------------------------

  function askToken(message) {
    session++;
    sessionAbort.abort();
    sessionAbort = new AbortController();
    token = null;
    $('#floor').hidden = true;
    $('#change-token').hidden = true;
    $('#login').hidden = false;
    $('#login-error').textContent = message || '';
    $('#token').value = '';
    $('#token').focus();
    showStatus();
  }

  function refused(r) {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch (err) {
      // storage unavailable: nothing was kept
    }
    askToken('The node refused this token (' + describe(r) + '). Enter another one.');
  }

  function connect() {
    session++;
    sessionAbort.abort();
    sessionAbort = new AbortController();
    clearTimeout(refreshTimer);
    refreshTimer = 0;
    refreshing = false;
    refreshAgain = false;
    cursor = null;
    lastOK = 0;
    data = {};
    problems = {};
    notes = {};
    recent.length = 0;
    $('#login').hidden = true;
    $('#floor').hidden = false;
    $('#change-token').hidden = false;
    setNote('', '');
    renderAll();
    showStatus();
    follow(session);
    wantRefresh();
  }

  // --- following the event log --------------------------------------------

  async function follow(s) {
    let backoff = RETRY_MIN_MS;
    const retry = async (why) => {
      setProblem('events', why);
      await pause(backoff);
      backoff = Math.min(backoff * 2, RETRY_MAX_MS);
    };
    while (s === session) {
      const q = cursor === null ? 'after=' + BEYOND_NEWEST : 'after=' + cursor + '&wait=' + EVENTS_WAIT;
      let r;
      try {
        r = await api('v1/events?' + q + '&limit=' + EVENTS_LIMIT, EVENTS_TIMEOUT_MS);
      } catch (err) {
        if (s !== session) return;
        await retry(unreachable(err));
        continue;
      }
      if (s !== session) return;
      const e = (r.body && r.body.error) || {};
      if (r.status === 200) {
        backoff = RETRY_MIN_MS;
        setProblem('events', '');
        setNote('events', '');
        const evs = r.body.events || [];
        if (typeof r.body.next === 'number') cursor = r.body.next;
        if (evs.length) {
          addEvents(evs);
          wantRefresh();
          if (evs.length < EVENTS_LIMIT) await pause(EVENTS_GATHER_MS);
        }
        continue;
      }
      // Where to (re)start: the newest event, after reading the state anew
      // (a first start, events no longer kept, a restored backup).
      if ((e.code === 'cursor_ahead' || e.code === 'events_expired') && typeof e.newest_id === 'number') {
        backoff = RETRY_MIN_MS;
        setProblem('events', '');
        if (cursor !== null && e.code === 'events_expired') {
          addGap('the events after #' + cursor + ' are no longer all kept: the view was read anew, events follow from #' + e.newest_id);
        } else if (cursor !== null) {
          addGap('the event log ends at #' + e.newest_id + ', before #' + cursor + ': the view was read anew');
        }
        cursor = e.newest_id;
        wantRefresh();
        continue;
      }
      if (r.status === 401) {
        refused(r);
        return;
      }
      if (r.status === 403) {
        setProblem('events', '');
        setNote('events', 'Not permitted for this token: ' + describe(r));
        await pause(RETRY_MAX_MS);
        continue;
      }
      await retry('the node answers ' + brief(r));
    }
  }

  function addEvents(evs) {
    for (const ev of evs) recent.unshift(ev);
    recent.length = Math.min(recent.length, MAX_EVENTS);
    renderEvents();
  }

  function addGap(text) {
    recent.unshift({ gap: true, text });
    recent.length = Math.min(recent.length, MAX_EVENTS);
    renderEvents();
  }

  // --- reading the panels -------------------------------------------------

  function wantRefresh() {
    refreshAgain = true;
    if (refreshing || refreshTimer || token === null) return;
    const gap = Math.min(REFRESH_IDLE_MS, Math.max(REFRESH_MIN_MS, REFRESH_COST_SHARE * refreshCost));
    refreshTimer = setTimeout(runRefresh, Math.max(0, lastRefresh + gap - Date.now()));
  }

  async function runRefresh() {
    const s = session;
    refreshTimer = 0;
    refreshAgain = false;
    refreshing = true;
    lastRefresh = Date.now();
    const reads = [
      read('stats', 'v1/stats', renderStats),
      read('agents', 'v1/agents?limit=' + MAX_AGENT_ROWS, renderAgents),
      read('queue', 'v1/queue?limit=' + QUEUE_LIMIT, renderQueue),
      read('cluster', 'v1/cluster', renderCluster),
    ];
    if (selected) reads.push(readConversation(selected));
    const ok = await Promise.all(reads);
    if (s !== session) return;
    refreshing = false;
    refreshCost = Date.now() - lastRefresh;
    if (ok.every(Boolean)) lastOK = Date.now();
    showStatus();
    if (refreshAgain) wantRefresh();
  }

  // read GETs one panel's data; it reports whether the panel is up to date
  // (a panel the token may not read counts as up to date).
  async function read(name, path, render) {
    const s = session;
    let r;
    try {
      r = await api(path, READ_TIMEOUT_MS);
    } catch (err) {
      if (s === session) setProblem(name, unreachable(err));
      return false;
    }
    if (s !== session) return false;
    if (r.status === 200) {
      data[name] = r.body;
      data[name + 'At'] = Date.now();
      setProblem(name, '');
      setNote(name, '');
      render();
      return true;
    }
    if (r.status === 401) {
      refused(r);
      return false;
    }
    if (r.status === 403) {
      data[name] = null;
      setProblem(name, '');
      setNote(name, 'Not permitted for this token: ' + describe(r));
      render();
      return true;
    }
    setProblem(name, 'the node answers ' + brief(r));
    return false;
  }

  async function readConversation(id) {
    const s = session;
    let conv;
    let expl;
    try {
      [conv, expl] = await Promise.all([
        api('v1/conversations/' + encodeURIComponent(id), READ_TIMEOUT_MS),
        api('v1/conversations/' + encodeURIComponent(id) + '/explain', READ_TIMEOUT_MS),
      ]);
    } catch (err) {
      if (s === session) setProblem('conversation', unreachable(err));
      return false;
    }
    if (s !== session || id !== selected) return true;
    if (conv.status === 401 || expl.status === 401) {
      refused(conv.status === 401 ? conv : expl);
      return false;
    }
    if (conv.status >= 500) {
      setProblem('conversation', 'the node answers ' + brief(conv));
      return false;
    }
    setProblem('conversation', '');
    if (conv.status === 200) {
      setNote('conversation', '');
      renderConversation(conv.body, expl);
    } else if (conv.status === 403) {
      setNote('conversation', 'Not permitted for this token: ' + describe(conv));
      $('#conversation-body').hidden = true;
    } else {
      setNote('conversation', 'No conversation ' + id + ' here (' + describe(conv) + '): ended and pruned, or never created.');
      $('#conversation-body').hidden = true;
    }
    return true;
  }

  function select(id) {
    selected = id;
    $('#conversation-h').textContent = 'Conversation ' + id;
    $('#open-id').value = id;
    $('#close-conversation').hidden = false;
    update($('#explain'), [h('p', { class: 'empty' }, 'Loading…')]);
    $('#conversation-h').focus();
    readConversation(id);
  }

  function unselect() {
    selected = '';
    $('#conversation-h').textContent = 'Conversation';
    $('#open-id').value = '';
    $('#close-conversation').hidden = true;
    $('#conversation-body').hidden = true;
    setNote('conversation', '');
    setProblem('conversation', '');
  }

  function convLink(id) {
    return h('button', { type: 'button', class: 'link', 'data-conversation': id, onclick: () => select(id) }, id);
  }

  // --- rendering -----------------------------------------------------------

  // label names each cell after its column, for the stacked layout of
  // narrow screens; the explicit roles keep the table's meaning for
  // assistive technology when CSS no longer displays it as a table.
  function label(table) {
    const heads = [...table.tHead.rows[0].cells].map((c) => c.textContent);
    for (const row of table.tBodies[0].rows) {
      row.setAttribute('role', 'row');
      [...row.cells].forEach((c, i) => {
        c.setAttribute('role', c.tagName === 'TH' ? 'rowheader' : 'cell');
        if (c.colSpan === 1 && heads[i]) c.dataset.label = heads[i];
      });
    }
  }

  function tableRoles(table) {
    table.setAttribute('role', 'table');
    for (const g of [table.tHead, ...table.tBodies]) g.setAttribute('role', 'rowgroup');
    for (const row of table.tHead.rows) {
      row.setAttribute('role', 'row');
      for (const c of row.cells) c.setAttribute('role', 'columnheader');
    }
  }

  // update puts nodes into el unless el already shows the same: a re-read
  // that changed nothing leaves the page alone (no flicker, no repeated
  // announcement of a live region). When it does change, the conversation
  // button that had the focus keeps it.
  function update(el, nodes) {
    const sig = nodes.map((n) => n.outerHTML).join('');
    if (el.omnirouterShown === sig) return false;
    el.omnirouterShown = sig;
    const a = document.activeElement;
    const focused = a && el.contains(a) ? a.getAttribute('data-conversation') : null;
    el.replaceChildren(...nodes);
    if (focused) {
      const b = el.querySelector('[data-conversation="' + CSS.escape(focused) + '"]');
      if (b) b.focus();
    }
    ticks(el);
    return true;
  }

  function fill(tb, rows) {
    if (update(tb, rows)) label(tb.closest('table'));
  }

  function emptyRow(cols, text) {
    return h('tr', null, h('td', { colspan: cols, class: 'empty' }, text));
  }

  function renderAll() {
    renderStats();
    renderQueue();
    renderAgents();
    renderCluster();
    renderEvents();
  }

  function renderStats() {
    const tb = $('#queue-table tbody');
    const st = data.stats;
    if (!st) {
      fill(tb, [emptyRow(9, notes.stats ? 'Not permitted' : 'Loading…')]);
      return;
    }
    const at = data.statsAt;
    const windows = new Map();
    for (const w of st.windows || []) if (w.window === '30m') windows.set(w.channel + '/' + w.group, w);
    const rows = (st.channels || []).map((r) => {
      const key = r.channel + '/' + r.group;
      const w = windows.get(key);
      let sl = '—';
      let slTitle = 'nothing assigned or missed in 30 minutes';
      if (w && typeof w.service_level === 'number') {
        sl = Math.round(w.service_level * 100) + '%';
        slTitle = w.assigned + ' assigned, ' + w.missed + ' missed in 30 minutes';
      }
      const waiting = r.waiting > 0;
      const a = r.agents || {};
      return h('tr', { 'data-key': key, class: r.group === '' ? 'total' : null },
        h('th', { scope: 'row' }, r.channel),
        h('td', null, r.group === '' ? 'all' : r.group),
        h('td', { class: 'num', 'data-field': 'waiting' }, r.waiting),
        h('td', { class: 'num', 'data-field': 'longest-wait', 'data-since': waiting ? since(at, r.longest_wait_seconds) : null },
          waiting ? '' : '—'),
        h('td', { class: 'num', 'data-field': 'offered' }, r.offered),
        h('td', { class: 'num', 'data-field': 'assigned' }, r.assigned),
        h('td', { class: 'num', 'data-field': 'online', title: (a.away || 0) + ' away, ' + (a.transfers_only || 0) + ' transfers only, ' + (a.offline || 0) + ' offline' }, a.online || 0),
        h('td', { class: 'num', 'data-field': 'capacity' }, r.capacity_used + ' / ' + r.capacity_total),
        h('td', { class: 'num', 'data-field': 'service-level', title: slTitle }, sl));
    });
    if (!rows.length) rows.push(emptyRow(9, 'No agents or conversations yet'));
    fill(tb, rows);
  }

  function renderQueue() {
    const tb = $('#waiting-table tbody');
    const q = data.queue;
    const more = $('#waiting-more');
    if (!q) {
      fill(tb, [emptyRow(6, notes.queue ? 'Not permitted' : 'Loading…')]);
      more.textContent = '';
      return;
    }
    const at = data.queueAt;
    const items = q.items || [];
    const rows = items.map((it) => h('tr', { 'data-id': it.id },
      h('td', { class: 'num' }, it.position),
      h('th', { scope: 'row' }, convLink(it.id)),
      h('td', null, it.channel),
      h('td', null, it.group || '—'),
      h('td', { class: 'num' }, it.priority),
      h('td', { class: 'num', 'data-since': since(at, it.wait_seconds) })));
    if (!rows.length) rows.push(emptyRow(6, 'Nobody is waiting'));
    fill(tb, rows);
    more.textContent = items.length >= QUEUE_LIMIT ? 'Showing the first ' + QUEUE_LIMIT + ' in routing order; the table above counts them all.' : '';
  }

  function renderAgents() {
    const tb = $('#agents-table tbody');
    const list = data.agents && data.agents.agents;
    const more = $('#agents-more');
    if (!list) {
      fill(tb, [emptyRow(7, notes.agents ? 'Not permitted' : 'Loading…')]);
      more.textContent = '';
      return;
    }
    const rows = list.slice(0, MAX_AGENT_ROWS).map((a) => {
      const ids = a.conversations || [];
      return h('tr', { 'data-agent': a.id },
        h('th', { scope: 'row' }, a.name && a.name !== a.id ? [a.name, ' ', h('span', { class: 'badge' }, a.id)] : a.id),
        h('td', { 'data-field': 'status' }, h('span', { class: 'badge ' + a.status }, a.status.replace('_', ' '))),
        CHANNELS.map((ch) => {
          const cap = (a.capacity || {})[ch] || 0;
          const load = (a.load || {})[ch] || 0;
          if (!cap && !load) return h('td', { class: 'num', 'data-channel': ch, title: 'no capacity on ' + ch }, '—');
          return h('td', { class: 'num' + (load >= cap ? ' full' : ''), 'data-channel': ch }, load + ' / ' + cap);
        }),
        h('td', { class: 'ids' }, ids.slice(0, MAX_IDS).map(convLink), ids.length > MAX_IDS ? ' +' + (ids.length - MAX_IDS) : null,
          ids.length ? null : h('span', { class: 'empty' }, 'none')));
    });
    if (!rows.length) rows.push(emptyRow(7, 'No agents yet'));
    fill(tb, rows);
    const total = data.agents.total || list.length;
    more.textContent = total > list.length ? 'Showing ' + list.length + ' of ' + total + ' agents (by id).' : '';
  }

  function facts(dl, pairs) {
    update(dl, pairs.filter((p) => p[1] !== undefined && p[1] !== null && p[1] !== '')
      .flatMap(([k, v, attrs]) => [h('dt', null, k), h('dd', attrs || null, v)]));
  }

  function renderCluster() {
    const c = data.cluster;
    const tb = $('#cluster-table tbody');
    if (!c) {
      fill(tb, [emptyRow(5, notes.cluster ? 'Not permitted' : 'Loading…')]);
      update($('#cluster-facts'), []);
      return;
    }
    $('#node').textContent = 'Node ' + c.id + ' · ' + c.state;
    facts($('#cluster-facts'), [
      ['This node', c.id + ' (' + c.state + ')'],
      ['Leader', c.leader || 'none: an election is under way', { 'data-field': 'leader' }],
      ['Term', c.term],
      ['Applied / committed', c.applied_index + ' / ' + c.commit_index],
    ]);
    const rows = (c.nodes || []).map((n) => h('tr', { 'data-node': n.id },
      h('th', { scope: 'row' }, n.id, n.id === c.id ? ' (this node)' : ''),
      h('td', { 'data-field': 'role' }, n.leader ? 'leader' : n.id === c.id ? c.state : 'follower'),
      h('td', null, n.suffrage),
      h('td', { 'data-field': 'caught-up', class: n.caught_up ? null : 'bad' }, n.caught_up ? 'yes' : 'no'),
      h('td', { title: n.http_addr }, (n.http_addr || '').replace(/^http:\/\//, ''))));
    if (!rows.length) rows.push(emptyRow(5, 'No members known'));
    fill(tb, rows);
  }

  function renderEvents() {
    const ol = $('#event-list');
    if (!recent.length) {
      update(ol, [h('li', { class: 'empty' }, 'Events appear here as they happen.')]);
      return;
    }
    update(ol, recent.map((ev) => ev.gap
      ? h('li', { class: 'empty' }, ev.text)
      : h('li', { 'data-event': ev.id },
        h('span', { class: 'id' }, '#' + ev.id),
        h('time', { datetime: ev.at }, clock(ev.at)),
        h('span', { class: 'type' }, ev.type),
        ev.conversation_id ? convLink(ev.conversation_id) : null,
        ev.agent_id ? ' ' + ev.agent_id : null)));
  }

  function renderConversation(c, expl) {
    $('#conversation-body').hidden = false;
    facts($('#conversation-facts'), [
      ['State', c.state, { 'data-field': 'state' }],
      ['Channel', c.channel + (c.client ? ' (' + c.client + ')' : '')],
      ['Group', c.group],
      ['Priority', c.priority],
      ['Skills', (c.skills || []).join(', ')],
      ['Agent', c.agent_id],
      ['Queued at', c.queued_at ? clock(c.queued_at) : ''],
      ['Ended', c.ended_reason],
      ['Ticket', c.ticket ? c.ticket.id + ' (' + c.ticket.status + ')' : ''],
    ]);
    renderExplain(expl);
    const msgs = c.transcript || [];
    const shown = msgs.slice(-MAX_MESSAGES);
    $('#transcript-more').textContent = msgs.length > shown.length ? 'The last ' + shown.length + ' of ' + msgs.length + ' messages.' : '';
    update($('#transcript'), (shown.length ? shown.map((m) => h('li', null,
      h('span', { class: 'who' }, m.author === 'agent' && m.agent_id ? m.agent_id : m.author),
      h('time', { datetime: m.at }, clock(m.at)),
      h('span', { class: 'text' }, m.text))) : [h('li', { class: 'empty' }, 'No messages')]));
  }

  function renderExplain(r) {
    const box = $('#explain');
    if (r.status === 404 && !(r.body && r.body.error && r.body.error.code === 'conversation_not_found')) {
      update(box, [h('p', { class: 'empty' }, 'This node does not explain conversations.')]);
      return;
    }
    if (r.status !== 200) {
      update(box, [h('p', { class: 'empty' }, (r.status === 403 ? 'Not permitted for this token: ' : 'No explanation: ') + describe(r))]);
      return;
    }
    const x = r.body || {};
    const parts = [];
    const state = String(x.state || '').replace('_', ' ');
    let line = state.charAt(0).toUpperCase() + state.slice(1);
    if (x.agent_id) line += ', with ' + x.agent_id;
    if (typeof x.position === 'number' && x.position > 0) {
      line += ', position ' + x.position + (typeof x.queue_length === 'number' ? ' of ' + x.queue_length : '') + ' in the ' + x.channel + ' queue';
    }
    if (x.state === 'queued' && typeof x.eligible_agents === 'number') {
      line += '; ' + x.eligible_agents;
      if (typeof x.agents_considered === 'number') line += ' of ' + x.agents_considered + ' agents with ' + x.channel + ' capacity';
      line += ' eligible';
    }
    parts.push(h('p', { 'data-field': 'summary' }, line + '.'));
    const causes = x.causes || [];
    if (causes.length) {
      parts.push(h('p', null, 'What keeps agents from it:'));
      parts.push(h('ul', { class: 'causes' }, causes.map((c) => {
        const ids = c.agents || [];
        return h('li', { 'data-cause': c.cause },
          h('span', { class: 'cause' }, c.cause), ' — ',
          c.count + ' agent' + (c.count === 1 ? '' : 's') + (CAUSES[c.cause] ? ' ' + CAUSES[c.cause] : ''),
          ids.length ? ' (' + ids.join(', ') + (c.count > ids.length ? ', …' : '') + ')' : '',
          c.at ? [' until ', h('time', { datetime: c.at }, clock(c.at))] : c.detail ? ': ' + c.detail : '');
      })));
    }
    if (x.next_change_at) parts.push(h('p', null, 'Next change due at ', h('time', { datetime: x.next_change_at }, clock(x.next_change_at)), '.'));
    update(box, parts);
  }

  // --- wiring --------------------------------------------------------------

  function start() {
    for (const t of document.querySelectorAll('table.stack')) tableRoles(t);
    $('#queue').dataset.sources = 'stats queue';
    $('#agents').dataset.sources = 'agents';
    $('#cluster').dataset.sources = 'cluster';
    $('#events').dataset.sources = 'events';
    $('#conversation').dataset.sources = 'conversation';
    $('#login-form').addEventListener('submit', (e) => {
      e.preventDefault();
      token = $('#token').value.trim();
      try {
        sessionStorage.setItem(TOKEN_KEY, token);
      } catch (err) {
        // storage unavailable: the token lasts until the page is left
      }
      $('#token').value = '';
      connect();
    });
    $('#change-token').addEventListener('click', () => {
      try {
        sessionStorage.removeItem(TOKEN_KEY);
      } catch (err) {
        // storage unavailable: nothing was kept
      }
      askToken('');
    });
    $('#open-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const id = $('#open-id').value.trim();
      if (id) select(id);
      else unselect();
    });
    $('#close-conversation').addEventListener('click', unselect);
    setInterval(tick, 1000);
    let saved = null;
    try {
      saved = sessionStorage.getItem(TOKEN_KEY);
    } catch (err) {
      saved = null;
    }
    if (saved === null) {
      askToken('');
    } else {
      token = saved;
      connect();
    }
  }

  start();
})();
