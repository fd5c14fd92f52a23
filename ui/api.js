// ui/api.js: everything that talks to the server. Same-origin fetch() only;
// the token (when the server wants one) lives in memory and sessionStorage,
// goes out as "Authorization: Bearer", never into a URL (not even a curl
// line: those say $LOCKD_TOKEN). The event stream is read with fetch() and a
// stream reader, not EventSource, so that it can carry the header too.

const TOKEN_KEY = 'lockd-token';
let token = null;
try { token = sessionStorage.getItem(TOKEN_KEY); } catch (e) { token = null; }

export function getToken() { return token; }
export function setToken(t) {
  token = t || null;
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch (e) { /* storage disabled: memory only */ }
}

// Server clock minus ours (ms), from the Date header; only trusted when
// larger than its 1 s resolution.
export let skewMs = 0;
function learnSkew(resp, t0, t1) {
  const d = Date.parse(resp.headers.get('Date') || '');
  if (!Number.isFinite(d)) return;
  const s = d + 500 - (t0 + t1) / 2;
  skewMs = Math.abs(s) > 2000 ? s : 0;
}
export function serverNow() { return Date.now() + skewMs; }

export function query(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(v));
  }
  return parts.length ? '?' + parts.join('&') : '';
}

// One request. Never throws: a network failure is status 0 with an error
// body, so that every caller shows something where it happened.
export async function request(method, path, params, opts = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  const url = (opts.base || '') + path + query(params);
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), opts.timeoutMs || 15000);
  const t0 = Date.now();
  let resp;
  try {
    resp = await fetch(url, { method, headers, cache: 'no-store', signal: ctrl.signal,
                              credentials: opts.base ? 'omit' : 'same-origin', mode: opts.base ? 'cors' : 'same-origin' });
  } catch (e) {
    clearTimeout(timer);
    const why = e && e.name === 'AbortError' ? 'timed out' : 'unreachable';
    return { status: 0, ok: false, headers: new Headers(), body: { error: 'Server ' + why } };
  }
  clearTimeout(timer);
  if (!opts.base) learnSkew(resp, t0, Date.now());
  let body = null;
  const text = await resp.text().catch(() => '');
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = { error: text.slice(0, 200) }; }
  return { status: resp.status, ok: resp.ok, headers: resp.headers, body };
}

// "409 Lock conflict: held by worker-a", "503 No leader: retry in 1 s"...
export function describe(r) {
  if (r.status === 0) return (r.body && r.body.error) || 'Server unreachable';
  const b = r.body || {};
  let s = r.status + ' ' + (b.error || (r.ok ? 'OK' : 'Error'));
  if (r.status === 409 && 'owner' in b) s += ': held by ' + (b.owner === null ? 'an anonymous client' : b.owner);
  if (r.status === 503) {
    const ra = r.headers.get('Retry-After');
    s += ra ? ': retry in ' + ra + ' s' : ': retry later';
  }
  if (r.status === 504 && b.outcome === 'unknown') s += ' (it may or may not have been applied)';
  if (r.status === 401 || r.status === 403) s += token ? ' (check the token)' : ' (enter a token)';
  return s;
}

// The command line for an action, for the "copy as curl" buttons.
export function curl(method, path, params) {
  const origin = location.origin;
  const q = query(params);
  let s = 'curl -sS';
  if (method !== 'GET') s += ' -X ' + method;
  s += " '" + origin + path + q + "'";
  if (token) s += ' -H "Authorization: Bearer $LOCKD_TOKEN"';
  return s;
}

export function lockPath(name) {
  return '/lock/' + encodeURIComponent(name);
}

// ---- the event stream ------------------------------------------------------

// Opens GET /events (optionally ?prefix=) and calls
//   onEvent(type, data, id) for each event (reset included),
//   onStatus(state, detail) with 'connecting' | 'live' | 'reconnecting' |
//   'unavailable' (the server has no /events) | 'unauthorized' | 'closed'.
// Resumes with Last-Event-ID after a drop. Returns { close() }.
export function openEvents({ prefix, onEvent, onStatus }) {
  let lastId = null, closed = false, ctrl = null, backoff = 500;
  const status = (s, d) => { if (!closed) onStatus && onStatus(s, d); };

  async function run() {
    while (!closed) {
      ctrl = new AbortController();
      const headers = { Accept: 'text/event-stream' };
      if (lastId) headers['Last-Event-ID'] = lastId;
      if (token) headers.Authorization = 'Bearer ' + token;
      status(lastId ? 'reconnecting' : 'connecting');
      let resp;
      try {
        resp = await fetch('/events' + query({ prefix }), { headers, cache: 'no-store', signal: ctrl.signal });
      } catch (e) {
        if (closed) return;
        await wait(backoff);
        backoff = Math.min(backoff * 2, 10000);
        continue;
      }
      if (resp.status === 404 || resp.status === 405) { status('unavailable'); return; }
      if (resp.status === 401 || resp.status === 403) { status('unauthorized'); return; }
      if (!resp.ok || !resp.body) {
        status('reconnecting', resp.status);
        resp.body && resp.body.cancel().catch(() => {});
        await wait(backoff);
        backoff = Math.min(backoff * 2, 10000);
        continue;
      }
      backoff = 500;
      status('live');
      try {
        await readStream(resp.body, (type, data, id) => {
          if (id !== null) lastId = id;
          if (!closed) onEvent(type, data, id);
        });
      } catch (e) { /* dropped: reconnect */ }
      if (closed) return;
      await wait(300);
    }
  }

  function wait(ms) { return new Promise((res) => setTimeout(res, ms)); }
  run();
  return {
    close() { closed = true; if (ctrl) ctrl.abort(); },
    get lastId() { return lastId; },
  };
}

// SSE parsing (the WHATWG rules for lines, fields and dispatch).
async function readStream(body, dispatch) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '', data = [], type = '', id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let m;
    while ((m = /\r\n|\r|\n/.exec(buf)) !== null) {
      if (m[0] === '\r' && m.index === buf.length - 1) break; // a \n may follow
      const line = buf.slice(0, m.index);
      buf = buf.slice(m.index + m[0].length);
      if (line === '') {
        if (data.length) {
          let parsed = null;
          try { parsed = JSON.parse(data.join('\n')); } catch (e) { parsed = { raw: data.join('\n') }; }
          dispatch(type || 'message', parsed, id);
        }
        data = []; type = ''; id = null;
        continue;
      }
      if (line[0] === ':') continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let val = c < 0 ? '' : line.slice(c + 1);
      if (val[0] === ' ') val = val.slice(1);
      if (field === 'data') data.push(val);
      else if (field === 'event') type = val;
      else if (field === 'id' && !val.includes('\0')) id = val;
    }
  }
}
