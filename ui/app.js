// ui/app.js: the shell: routing by URL hash (#/locks, #/lock/NAME,
// #/cluster), the node line and no-leader banner, and the token form. Each
// view module exports render(main, ctx) and returns a cleanup function.

import { request, setToken, getToken, describe } from './api.js';
import { note } from './util.js';
import * as locks from './locks.js';
import * as lock from './lock.js';
import * as cluster from './cluster.js';

const main = document.getElementById('main');
const banner = document.getElementById('banner');
const nodeInfo = document.getElementById('node-info');
const authForm = document.getElementById('auth');
const authInput = document.getElementById('auth-token');
const authForget = document.getElementById('auth-forget');
const authState = document.getElementById('auth-state');

// Shared with the views: the last /status and whether writes are allowed.
const ctx = {
  status: null,
  authRequired: false,
  canWrite() { return !this.authRequired || !!getToken(); },
  listeners: new Set(),
  onChange(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); },
  changed() { for (const fn of this.listeners) fn(); },
  refreshStatus,
};

let cleanup = null;

function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  ctx.listeners.clear();
  const hash = location.hash || '#/locks';
  let m;
  let view = 'locks';
  if ((m = /^#\/lock\/(.+)$/.exec(hash))) {
    view = 'lock';
    let name;
    try { name = decodeURIComponent(m[1]); } catch (e) { name = m[1]; }
    cleanup = lock.render(main, ctx, name);
  } else if (hash.startsWith('#/cluster')) {
    view = 'cluster';
    cleanup = cluster.render(main, ctx);
  } else {
    cleanup = locks.render(main, ctx, new URLSearchParams(hash.split('?')[1] || ''));
  }
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.view === view || (view === 'lock' && a.dataset.view === 'locks')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function refreshStatus() {
  const r = await request('GET', '/status');
  if (r.status === 200 && r.body) {
    ctx.status = r.body;
    const s = r.body;
    ctx.authRequired = s.auth === true;
    nodeInfo.textContent = 'node ' + s.id + ' · ' + s.role + ' · term ' + s.term;
    if (!s.leader) {
      note(banner, 'error', 'No leader: node ' + s.id + ' knows of no leader, so writes answer 503 until one is elected.');
      banner.className = 'banner';
    } else {
      banner.hidden = true;
    }
  } else {
    ctx.status = null;
    nodeInfo.textContent = '';
    note(banner, 'error', 'Cannot read /status: ' + describe(r));
    banner.className = 'banner';
    if (r.status === 401) ctx.authRequired = true;
  }
  renderAuth();
  ctx.changed();
  return r;
}

function renderAuth() {
  authForm.hidden = !ctx.authRequired && !getToken();
  authForget.hidden = !getToken();
  authState.textContent = ctx.authRequired && !getToken() ? 'read-only until a token is entered' : getToken() ? 'token set' : '';
}

authForm.addEventListener('submit', (e) => {
  e.preventDefault();
  setToken(authInput.value.trim());
  authInput.value = '';
  refreshStatus().then(route);
});
authForget.addEventListener('click', () => {
  setToken(null);
  refreshStatus().then(route);
});

window.addEventListener('hashchange', route);
document.addEventListener('keydown', (e) => {
  // "/" focuses the view's filter, as in most list UIs
  if (e.key === '/' && !/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) {
    const f = document.querySelector('[data-focus-key]');
    if (f) { e.preventDefault(); f.focus(); }
  }
});

setInterval(refreshStatus, 5000);
refreshStatus().then(route);
