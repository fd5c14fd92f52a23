// ui/lock.js: one lock: every field, its FIFO wait queue, its recent
// history, and the actions (acquire, renew, release, force release behind a
// typed confirmation), each with "copy as curl". Results and errors appear
// next to the action that caused them.

import { request, describe, curl, lockPath, openEvents, serverNow } from './api.js';
import { h, clear, dur, when, note, copy, field } from './util.js';

const KNOWN = ['name', 'locked', 'owner', 'token', 'acquired_at_ms', 'ttl_ms', 'expires_in_ms', 'waiters'];

export function render(main, ctx, name) {
  let current = null, deadline = null, tick = null, stream = null, poll = null, queueSupported = true;
  const path = lockPath(name);

  const state = h('span.badge', {}, '…');
  const fieldsBox = h('dl.fields');
  const fieldsMsg = h('div.note', { hidden: true });
  const queueBox = h('div#queue');
  const historyBox = h('div#history');
  const liveState = h('span.muted', { 'aria-live': 'polite' });
  const readOnly = h('p.note.info#read-only', { hidden: true }, 'Read-only: this server needs a token for changes. Enter one at the top.');

  // ---- actions ----
  const acq = actionForm('acquire', 'Acquire', 'POST', [
    ['owner', 'Owner', { placeholder: 'client id, e.g. worker-a' }, 'Empty: an anonymous lock anyone may release.'],
    ['ttl', 'TTL', { placeholder: '30s' }, '250ms, 30s, 5m, 1h; empty: no lease.'],
    ['wait', 'Wait', { placeholder: '0' }, 'Queue for up to this long if held (FIFO).'],
  ]);
  const ren = actionForm('renew', 'Renew', 'POST', [
    ['owner', 'Owner', { placeholder: 'the holder' }, 'Only the holder renews: same token, fresh TTL.'],
    ['ttl', 'TTL', { placeholder: '30s' }, null],
  ]);
  const rel = actionForm('release', 'Release', 'DELETE', [
    ['owner', 'Owner', { placeholder: 'the holder' }, null],
    ['token', 'Token', { inputmode: 'numeric', placeholder: 'fencing token' }, 'Must match when given.'],
  ]);
  const force = forceForm();

  clear(main).append(
    h('p.crumbs', {}, h('a', { href: '#/locks' }, '← Locks')),
    h('h1', {}, h('span.name', {}, name), ' ', state),
    fieldsMsg, fieldsBox,
    h('section', { 'aria-labelledby': 'q-h' }, h('h2#q-h', {}, 'Wait queue'), queueBox),
    h('section', { 'aria-labelledby': 'h-h' }, h('h2#h-h', {}, 'Recent history'), historyBox),
    h('section', { 'aria-labelledby': 'a-h' }, h('h2#a-h', {}, 'Actions ', liveState), readOnly,
      h('div.actions', {}, acq.el, ren.el, rel.el, force.el)));

  function actionForm(id, title, method, specs) {
    const inputs = {};
    const fields = specs.map(([k, label, attrs, hint]) => {
      const f = field(label, Object.assign({ name: k }, attrs), hint);
      inputs[k] = f.input;
      return f.el;
    });
    const out = h('div.note', { hidden: true });
    const curlOut = h('code.curl', { hidden: true });
    const params = () => {
      const p = {};
      for (const [k, el] of Object.entries(inputs)) if (el.value.trim() !== '') p[k] = el.value.trim();
      return p;
    };
    const submit = h('button', { type: 'submit' }, title);
    const form = h('form.action#' + id, { 'aria-labelledby': id + '-title', onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      note(out, 'info', title + '…');
      const r = await request(method, path, params(), { timeoutMs: 330000 });
      submit.disabled = !ctx.canWrite();
      report(out, title, r);
      refresh();
    } },
      h('h3#' + id + '-title', {}, title), fields,
      h('div.buttons', {}, submit,
        h('button.secondary', { type: 'button', onclick: async () => {
          const c = curl(method, path, params());
          curlOut.textContent = c;
          curlOut.hidden = false;
          const ok = await copy(c, curlOut);
          note(out, 'info', ok ? 'Copied the curl command.' : 'Select and copy the command below.');
        } }, 'Copy as curl')),
      out, curlOut);
    return { el: form, inputs, submit };
  }

  function forceForm() {
    const confirmF = field('Type the lock name to confirm', { name: 'confirm', 'aria-label': 'Type ' + name + ' to confirm' }, 'Releases the lock whoever holds it (force=true).');
    const out = h('div.note', { hidden: true });
    const curlOut = h('code.curl', { hidden: true });
    const submit = h('button.danger', { type: 'submit', disabled: true }, 'Force release');
    confirmF.input.addEventListener('input', () => { submit.disabled = !ctx.canWrite() || confirmF.input.value !== name; });
    const form = h('form.action.danger-zone#force', { 'aria-labelledby': 'force-title', onsubmit: async (e) => {
      e.preventDefault();
      if (confirmF.input.value !== name) return;
      submit.disabled = true;
      const r = await request('DELETE', path, { force: 'true' });
      confirmF.input.value = '';
      report(out, 'Force release', r);
      refresh();
    } },
      h('h3#force-title', {}, 'Force release'), confirmF.el,
      h('div.buttons', {}, submit, h('button.secondary', { type: 'button', onclick: async () => {
        const c = curl('DELETE', path, { force: 'true' });
        curlOut.textContent = c;
        curlOut.hidden = false;
        const ok = await copy(c, curlOut);
        note(out, 'info', ok ? 'Copied the curl command.' : 'Select and copy the command below.');
      } }, 'Copy as curl')),
      out, curlOut);
    return { el: form, input: confirmF.input, submit };
  }

  function report(out, title, r) {
    if (r.ok) {
      const b = r.body || {};
      if (b.locked) note(out, 'ok', title + ': done. ', h('span', {}, 'Token ', h('strong.token', {}, String(b.token)),
        b.ttl_ms ? ', TTL ' + dur(b.ttl_ms) : ', no TTL'));
      else note(out, 'ok', title + ': released.');
    } else {
      note(out, 'error', title + ' failed: ' + describe(r));
    }
  }

  function applyWriteState() {
    const can = ctx.canWrite();
    readOnly.hidden = can;
    for (const f of [acq, ren, rel]) {
      f.submit.disabled = !can;
      for (const i of Object.values(f.inputs)) i.disabled = !can;
    }
    force.input.disabled = !can;
    force.submit.disabled = !can || force.input.value !== name;
  }
  ctx.onChange(applyWriteState);
  applyWriteState();

  // ---- data ----
  async function refresh() {
    let r = await request('GET', path, queueSupported ? { waiters: 'true' } : {});
    if (r.status === 400 && queueSupported && r.body && /waiters/.test(r.body.error || '')) {
      queueSupported = false; // a server without the queue in the API
      r = await request('GET', path);
    }
    if (r.status === 200 || (r.status === 404 && r.body && r.body.locked === false)) {
      note(fieldsMsg, 'info', '');
      showLock(r.status === 200 ? r.body : null);
    } else {
      note(fieldsMsg, 'error', 'Could not read the lock: ' + describe(r));
    }
    showQueue(r.status === 200 ? r.body : null);
    loadHistory();
  }

  function showLock(l) {
    current = l;
    clear(fieldsBox);
    state.textContent = l ? 'held' : 'free';
    state.className = 'badge ' + (l ? 'held' : 'free');
    if (!l) {
      deadline = null;
      fieldsBox.append(h('dt', {}, 'State'), h('dd', {}, 'Not locked.'));
      return;
    }
    deadline = l.expires_in_ms === null || l.expires_in_ms === undefined ? null : performance.now() + l.expires_in_ms;
    const row = (k, v, id) => fieldsBox.append(h('dt', {}, k), h('dd', id ? { id } : {}, v));
    row('Owner', l.owner === null ? '(anonymous: anyone may release it)' : l.owner, 'f-owner');
    row('Token', String(l.token), 'f-token');
    row('Acquired', [when(l.acquired_at_ms), ' (', h('span#f-held', {}, ''), ' ago)']);
    row('TTL', l.ttl_ms === null ? 'none (held until released)' : dur(l.ttl_ms));
    row('Expires in', h('span#f-expires', {}, ''));
    row('Waiters', typeof l.waiters === 'number' ? String(l.waiters) : Array.isArray(l.waiters) ? String(l.waiters.length) : '—', 'f-waiters');
    for (const [k, v] of Object.entries(l)) if (!KNOWN.includes(k)) row(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
    if (l.owner && !ren.inputs.owner.value) ren.inputs.owner.value = l.owner;
    if (l.owner && !rel.inputs.owner.value) rel.inputs.owner.value = l.owner;
    paint();
  }

  function paint() {
    if (!current) return;
    const held = document.getElementById('f-held');
    const exp = document.getElementById('f-expires');
    if (held) held.textContent = dur(serverNow() - current.acquired_at_ms);
    if (exp) exp.textContent = deadline === null ? 'never' : dur(deadline - performance.now());
  }

  function showQueue(l) {
    clear(queueBox);
    const q = l && Array.isArray(l.waiters) ? l.waiters : null;
    if (!queueSupported || (l && !q && typeof l.waiters !== 'number')) {
      queueBox.append(h('p.muted', {}, 'This server does not show wait queues (GET /lock/:name?waiters=true).'));
      return;
    }
    if (!q || q.length === 0) {
      queueBox.append(h('p.muted', {}, 'Nobody is waiting.'));
      return;
    }
    const now = performance.now();
    queueBox.append(h('ol.queue', {}, q.map((w, i) => h('li', { dataset: { waiter: w.waiter } },
      h('span.pos', {}, '#' + (i + 1)), ' ', w.owner === null ? '(anonymous)' : w.owner,
      h('span.muted', { dataset: { since: now - (w.waited_ms || 0) } }, ' waiting ' + dur(w.waited_ms)),
      w.ttl_ms ? h('span.muted', {}, ' · asks TTL ' + dur(w.ttl_ms)) : null))));
  }

  async function loadHistory() {
    const r = await request('GET', path + '/history');
    clear(historyBox);
    // No such route on this server: 404, or (before it existed) the path
    // read as a lock name with a '/' in it (400, byte 47).
    if ((r.status === 404 && !(r.body && Array.isArray(r.body.history))) ||
        (r.status === 400 && r.body && / byte 47 /.test(r.body.error || ''))) {
      historyBox.append(h('p.muted', {}, 'This server does not keep lock history (GET /lock/:name/history).'));
      return;
    }
    if (r.status !== 200 || !r.body || !Array.isArray(r.body.history)) {
      historyBox.append(h('p.note.error', { role: 'alert' }, 'Could not read the history: ' + describe(r)));
      return;
    }
    if (!r.body.history.length) {
      historyBox.append(h('p.muted', {}, 'No holder recorded on this node yet.'));
      return;
    }
    historyBox.append(h('div.scroll', {}, h('table.history', {},
      h('thead', {}, h('tr', {}, ['Holder', 'Token', 'Acquired', 'Held for', 'Ended'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, r.body.history.map((e) => h('tr', {},
        h('td', {}, e.owner === null ? '(anonymous)' : e.owner), h('td.num', {}, String(e.token)),
        h('td', {}, when(e.acquired_at_ms)),
        h('td.num', {}, e.ended_at_ms ? dur(e.ended_at_ms - e.acquired_at_ms) : dur(serverNow() - e.acquired_at_ms)),
        h('td', {}, e.ended || 'still held')))))));
  }

  stream = openEvents({
    prefix: name,
    onEvent(type, d) {
      if (type === 'reset' || type === 'leader_changed' || (d && d.name === name)) refresh();
    },
    onStatus(s) {
      liveState.textContent = s === 'live' ? '· live' : s === 'unavailable' ? '· refreshing every 2 s' : '· ' + s;
      if (s === 'unavailable') poll = setInterval(refresh, 2000);
    },
  });
  tick = setInterval(() => {
    paint();
    for (const el of queueBox.querySelectorAll('[data-since]')) el.textContent = ' waiting ' + dur(performance.now() - Number(el.dataset.since));
  }, 250);
  refresh();

  return () => {
    stream.close();
    clearInterval(tick);
    clearInterval(poll);
  };
}
