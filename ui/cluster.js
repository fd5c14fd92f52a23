// ui/cluster.js: the cluster as this node sees it (members, roles, leader,
// term, commit/applied index, lag, health), refreshed every 2 s. When the page is served by a member itself, the other
// members' /status are fetched directly too (they allow their peers'
// origins); behind a load balancer or proxy the page shows what this node
// knows and links to each node's own UI.

import { request, describe } from './api.js';
import { h, clear, dur, note } from './util.js';

export function render(main, ctx) {
  const msg = h('div.note', { hidden: true });
  const leaderLine = h('p#leader-line');
  const tbody = h('tbody');
  const probeNote = h('p.muted#probe-note');
  const table = h('table.cluster', {},
    h('caption.sr', {}, 'Cluster members'),
    h('thead', {}, h('tr', {}, ['Node', 'Address', 'Role', 'Term', 'Commit', 'Applied', 'Lag', 'Health']
      .map((t, i) => h(i >= 3 && i <= 6 ? 'th.num' : 'th', { scope: 'col' }, t)))),
    tbody);
  clear(main).append(h('h1', {}, 'Cluster'), msg, leaderLine, h('div.scroll', {}, table), probeNote);

  let timer = null, busy = false;

  async function refresh() {
    if (busy) return;
    busy = true;
    try { await load(); } finally { busy = false; }
  }

  async function load() {
    const [r, ready] = await Promise.all([request('GET', '/status'), request('GET', '/readyz')]);
    if (r.status !== 200 || !r.body) {
      note(msg, 'error', 'Could not read /status: ' + describe(r));
      return;
    }
    note(msg, 'info', '');
    const self = r.body;
    const members = Array.isArray(self.members) && self.members.length ? self.members
      : [{ id: self.id, address: location.host, role: self.role, self: true }];
    const selfMember = members.find((m) => m.self) || { address: location.host };
    const probe = members.some((m) => m.address === location.host);
    const seen = new Map(); // id -> status body or {error}
    seen.set(self.id, self);
    if (probe) {
      await Promise.all(members.filter((m) => !m.self).map(async (m) => {
        const pr = await request('GET', '/status', null, { base: 'http://' + m.address, timeoutMs: 2000 });
        seen.set(m.id, pr.status === 200 && pr.body ? pr.body : { error: describe(pr) });
      }));
    }
    const leaderId = self.leader ? self.leader.id : null;
    const leaderStatus = leaderId !== null ? seen.get(leaderId) : null;
    const commit = leaderStatus && leaderStatus.commit_index !== undefined ? leaderStatus.commit_index : self.commit_index;
    clear(leaderLine);
    if (leaderId === null) {
      leaderLine.append(h('strong.bad', {}, 'No leader'), ' known to node ' + self.id + ' (term ' + self.term + '): writes answer 503.');
    } else {
      leaderLine.append('Leader: ', h('strong#leader-id', {}, 'node ' + leaderId), ' at ' + (self.leader.address || '?') +
        ', term ' + self.term + '. ' + self.locks + ' lock' + (self.locks === 1 ? '' : 's') + ' held, next token ' + self.next_token + '.');
    }
    clear(tbody);
    for (const m of members) {
      const s = seen.get(m.id);
      const isSelf = !!m.self;
      const role = s && s.role ? s.role : m.role || 'unknown';
      const num = (v) => h('td.num', {}, v === undefined || v === null ? '—' : String(v));
      let health;
      if (isSelf) {
        health = ready.status === 200 ? h('span.good', {}, 'ready')
          : h('span.bad', {}, 'not ready' + (ready.body && ready.body.reason ? ': ' + ready.body.reason : ''));
      } else if (!probe) {
        health = h('span.muted', {}, 'not probed · ', h('a', { href: 'http://' + m.address + '/ui/', rel: 'noopener' }, 'its UI'));
      } else if (s && !s.error) {
        health = h('span.good', {}, 'up');
      } else {
        health = h('span.bad', {}, s ? s.error : 'unknown');
      }
      const lag = s && s.applied_index !== undefined ? Math.max(0, commit - s.applied_index) : null;
      tbody.append(h('tr', { dataset: { node: m.id, role } },
        h('td', {}, 'node ' + m.id, isSelf ? h('span.tag', {}, 'this node') : null),
        h('td', {}, m.address || '—'),
        h('td', {}, h('span.role.' + role, {}, role), m.id === leaderId ? ' ★' : null),
        num(s && s.term), num(s && s.commit_index), num(s && s.applied_index), num(lag),
        h('td', {}, health)));
    }
    probeNote.textContent = probe
      ? 'Each row is that node\'s own /status, fetched by this browser.'
      : 'Rows other than this node show what node ' + self.id + ' knows: this page is not served by a member (' +
        location.host + ' vs ' + (selfMember.address || '?') + '), so it does not contact the others directly.';
    const up = self.uptime_ms;
    if (up !== undefined) probeNote.append(' Node ' + self.id + ' up ' + dur(up) + ', version ' + self.version + '.');
  }

  timer = setInterval(refresh, 2000);
  refresh();
  return () => clearInterval(timer);
}
