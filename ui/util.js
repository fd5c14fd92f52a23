// ui/util.js: DOM building without innerHTML (every string is text), and
// the formats the views share.

// h('a.cls#id', {href, onclick, ...}, child, ...): children are nodes,
// strings, numbers, arrays or null.
export function h(tag, attrs, ...kids) {
  const m = /^([a-z0-9]+)((?:[.#][\w-]+)*)$/i.exec(tag);
  const el = document.createElement(m ? m[1] : tag);
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') el.classList.add(part.slice(1));
      else el.id = part.slice(1);
    }
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'text') el.textContent = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids) {
    if (k === null || k === undefined || k === false) continue;
    if (Array.isArray(k)) append(el, k);
    else el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// 350ms, 4.2s, 3m 05s, 2h 07m, 3d 04h
export function dur(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 0) ms = 0;
  if (ms < 1000) return Math.round(ms) + 'ms';
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + 's';
  const pad = (n) => String(Math.floor(n)).padStart(2, '0');
  if (s < 3600) return Math.floor(s / 60) + 'm ' + pad(s % 60) + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + pad((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd ' + pad((s % 86400) / 3600) + 'h';
}

export function when(ms) {
  if (!ms) return '—';
  const d = new Date(ms);
  return d.toLocaleString(undefined, { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

// A message box where the thing happened: kind 'error' | 'ok' | 'info'.
export function note(el, kind, text, extra) {
  clear(el);
  el.hidden = !text;
  el.className = 'note ' + kind;
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  if (text) append(el, [text, extra || null]);
}

// Copies text; falls back to selecting it where the clipboard API is not
// available (plain http on a non-local host). Resolves to true if copied.
export async function copy(text, fallbackEl) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (e) { /* denied: select instead */ }
  if (fallbackEl) {
    const r = document.createRange();
    r.selectNodeContents(fallbackEl);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(r);
  }
  return false;
}

// Field label + input, wired for screen readers.
let uid = 0;
export function field(label, attrs, hint) {
  const id = 'f' + (++uid);
  const input = h('input', Object.assign({ id, autocomplete: 'off', spellcheck: 'false' }, attrs));
  const hintEl = hint ? h('small.hint', { id: id + '-hint' }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', id + '-hint');
  return { el: h('div.field', {}, h('label', { for: id }, label), input, hintEl), input };
}
