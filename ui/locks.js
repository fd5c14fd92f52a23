// ui/locks.js: the list of locks: prefix filter, pages through `next`,
// live countdowns, and live updates from the event stream (with a pause
// switch). Without /events on the server it polls every 2 s instead.

import { request, describe, openEvents, serverNow } from './api.js';
import { h, clear, dur, note } from './util.js';

const LIMIT = 100;

export function render(main, ctx, params) {
  const prefix = params.get('prefix') || '';
  const after = params.get('after') || '';
  const back = (params.get('back') || '').split(',').filter((x) => x !== '');
  let rows = new Map(); // name -> {lock, deadline, row cells}
  let next = null, paused = false, missed = 0, events = 0, stream = null, poll = null, tick = null;
  let loading = false;

  const filter = h('input#prefix', { type: 'search', value: prefix, placeholder: 'e.g. deploy-', autocomplete: 'off',
                                     spellcheck: 'false', 'data-focus-key': '/', 'aria-describedby': 'prefix-hint' });
  const liveBox = h('input#live', { type: 'checkbox', checked: true });
  const liveState = h('span#live-state.muted', { 'aria-live': 'polite' });
  const msg = h('div.note', { hidden: true });
  const tbody = h('tbody');
  const table = h('table.locks', {},
    h('caption.sr', {}, 'Locks held' + (prefix ? ' with names starting ' + prefix : '')),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Owner'), h('th.num', { scope: 'col' }, 'Token'),
      h('th.num', { scope: 'col' }, 'Held for'), h('th.num', { scope: 'col' }, 'TTL left'),
      h('th.num', { scope: 'col' }, 'Waiters'))),
    tbody);
  const pager = h('nav.pager', { 'aria-label': 'Pages' });
  const count = h('p#count.muted');

  const form = h('form.toolbar', { role: 'search', onsubmit: (e) => { e.preventDefault(); go(filter.value.trim(), '', []); } },
    h('div.field', {}, h('label', { for: 'prefix' }, 'Name prefix'), filter,
      h('small.hint#prefix-hint', {}, 'Press / to focus. Empty shows every lock.')),
    h('button', { type: 'submit' }, 'Filter'),
    h('div.switch', {}, liveBox, h('label', { for: 'live' }, 'Live updates'), liveState));

  clear(main).append(h('h1', {}, 'Locks'), form, msg, count, h('div.scroll', {}, table), pager);

  function go(p, a, b) {
    const q = new URLSearchParams();
    if (p) q.set('prefix', p);
    if (a) q.set('after', a);
    if (b.length) q.set('back', b.join(','));
    const s = q.toString();
    location.hash = '#/locks' + (s ? '?' + s : '');
  }

  async function load() {
    if (loading) return;
    loading = true;
    const r = await request('GET', '/locks', { prefix, after, limit: LIMIT });
    loading = false;
    if (r.status !== 200 || !r.body || !Array.isArray(r.body.locks)) {
      note(msg, 'error', 'Could not list locks: ' + describe(r));
      return;
    }
    note(msg, 'info', '');
    next = r.body.next;
    rows = new Map();
    clear(tbody);
    for (const l of r.body.locks) upsert(l, false);
    if (r.body.locks.length === 0) {
      tbody.append(h('tr.empty', {}, h('td', { colspan: 6 }, prefix ? 'No lock held with this prefix.' : 'No lock is held.')));
    }
    renderPager(r.body.locks.length);
    missed = 0;
    updateLive();
  }

  function renderPager(n) {
    count.textContent = n ? 'Showing ' + n + ' lock' + (n === 1 ? '' : 's') + (after ? ' after ' + after : '') : '';
    clear(pager);
    if (after) {
      const prev = back.length ? back[back.length - 1] : '';
      pager.append(h('a.button', { href: '#', onclick: (e) => { e.preventDefault(); go(prefix, prev === '-' ? '' : prev, back.slice(0, -1)); } }, '← Previous'));
      pager.append(h('a.button', { href: '#', onclick: (e) => { e.preventDefault(); go(prefix, '', []); } }, 'First'));
    }
    if (next) {
      pager.append(h('a.button#next-page', { href: '#', rel: 'next', onclick: (e) => { e.preventDefault(); go(prefix, next, back.concat([after || '-'])); } }, 'Next →'));
    }
  }

  // The page shows names in (after, next]; a live event for a name outside
  // that window belongs to another page.
  function onPage(name) {
    if (prefix && !name.startsWith(prefix)) return false;
    if (after && name <= after) return false;
    if (next !== null && name > next) return false;
    return true;
  }

  function upsert(l, live) {
    let e = rows.get(l.name);
    const deadline = l.expires_in_ms === null || l.expires_in_ms === undefined ? null : performance.now() + l.expires_in_ms;
    if (!e) {
      const cells = {
        owner: h('td'), token: h('td.num'), held: h('td.num'), ttl: h('td.num'), waiters: h('td.num'),
      };
      const tr = h('tr', { dataset: { name: l.name } },
        h('td', {}, h('a', { href: '#/lock/' + encodeURIComponent(l.name) }, l.name)),
        cells.owner, cells.token, cells.held, cells.ttl, cells.waiters);
      e = { tr, cells };
      rows.set(l.name, e);
      const empty = tbody.querySelector('tr.empty');
      if (empty) empty.remove();
      // keep name order
      let before = null;
      for (const [n, o] of rows) if (n > l.name && (!before || n < before.name)) before = { name: n, tr: o.tr };
      tbody.insertBefore(tr, before ? before.tr : null);
    }
    e.lock = Object.assign(e.lock || {}, l);
    e.deadline = deadline;
    e.cells.owner.textContent = l.owner === null ? '(anonymous)' : l.owner;
    e.cells.owner.classList.toggle('muted', l.owner === null);
    e.cells.token.textContent = l.token;
    e.cells.waiters.textContent = typeof e.lock.waiters === 'number' ? e.lock.waiters : '—';
    if (live) flash(e.tr);
    paint(e);
  }

  function remove(name) {
    const e = rows.get(name);
    if (!e) return;
    rows.delete(name);
    e.tr.remove();
  }

  function flash(tr) {
    tr.classList.remove('flash');
    void tr.offsetWidth;
    tr.classList.add('flash');
  }

  function paint(e) {
    const now = performance.now();
    e.cells.held.textContent = e.lock.acquired_at_ms ? dur(serverNow() - e.lock.acquired_at_ms) : '—';
    if (e.deadline === null) {
      e.cells.ttl.textContent = 'no TTL';
      e.cells.ttl.className = 'num muted';
    } else {
      const left = e.deadline - now;
      e.cells.ttl.textContent = dur(left);
      e.cells.ttl.className = 'num' + (left < 5000 ? ' warn' : '');
    }
  }

  function onEvent(type, d) {
    events++;
    if (paused) { missed++; updateLive(); return; }
    if (type === 'reset' || type === 'leader_changed') { load(); return; }
    if (!d || typeof d.name !== 'string') return;
    const name = d.name;
    if (!onPage(name)) return;
    switch (type) {
      case 'acquired': case 'renewed': case 'handed_over': {
        const prev = rows.get(name);
        const waiters = prev && typeof prev.lock.waiters === 'number'
          ? Math.max(0, prev.lock.waiters - (type === 'handed_over' ? 1 : 0)) : undefined;
        upsert({ name, owner: d.owner, token: d.token, acquired_at_ms: d.acquired_at_ms, ttl_ms: d.ttl_ms,
                 expires_in_ms: d.ttl_ms === null ? null : Math.max(0, d.ttl_ms - Math.max(0, serverNow() - d.time_ms)),
                 waiters }, true);
        break;
      }
      case 'released': case 'expired': case 'forced': remove(name); break;
      case 'waiter_queued': case 'waiter_left': {
        const e = rows.get(name);
        if (e && typeof e.lock.waiters === 'number') {
          e.lock.waiters = Math.max(0, e.lock.waiters + (type === 'waiter_queued' ? 1 : -1));
          e.cells.waiters.textContent = e.lock.waiters;
          flash(e.tr);
        }
        break;
      }
    }
    updateLive();
  }

  function updateLive() {
    if (stream === null && poll !== null) liveState.textContent = paused ? 'paused' : 'polling every 2 s (this server has no /events)';
    else if (paused) liveState.textContent = 'paused' + (missed ? ' · ' + missed + ' update' + (missed === 1 ? '' : 's') + ' waiting' : '');
    else if (stream) liveState.textContent = liveText + (events ? ' · ' + events + ' event' + (events === 1 ? '' : 's') : '');
  }

  let liveText = 'connecting';
  stream = openEvents({
    prefix,
    onEvent,
    onStatus(s) {
      if (s === 'unavailable') {
        stream = null;
        poll = setInterval(() => { if (!paused) load(); }, 2000);
      } else {
        liveText = s === 'live' ? 'live' : s;
        if (s === 'live') load(); // anything applied before the stream opened
      }
      updateLive();
    },
  });
  liveBox.addEventListener('change', () => {
    paused = !liveBox.checked;
    if (!paused && missed) load();
    missed = 0;
    updateLive();
  });

  tick = setInterval(() => { for (const e of rows.values()) paint(e); }, 250);
  load();
  if (!prefix && !after) filter.focus();

  return () => {
    if (stream) stream.close();
    clearInterval(poll);
    clearInterval(tick);
  };
}
