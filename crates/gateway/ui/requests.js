// Requests: the request log with the filters of /admin/requests (applied by the server), and one request
// opened into its attempt timeline (#/requests/ID).

import * as api from './api.js';
import { h, put, num, ms, when, outcome, table } from './dom.js';
import { timeline } from './charts.js';

/** The filters, kept while the tab lives so going back to the list keeps them. */
const filters = { route: '', target: '', outcome: '', key: '', since: '1h', limit: '50' };

/** One log row as a table row; a click opens it. */
export function requestRow(r) {
  const open = () => { location.hash = '#/requests/' + encodeURIComponent(r.id); };
  return h('tr', { class: 'clickable', 'data-request': r.id, tabindex: 0, onclick: open,
    onkeydown: (e) => { if (e.key === 'Enter') open(); } },
  h('td', {}, when(r.time)), h('td', {}, r.route), h('td', {}, outcome(r.outcome)),
  h('td', { class: 'num' }, r.status === null ? '—' : r.status), h('td', {}, r.served_by || '—'),
  h('td', {}, r.fallback ? 'yes' : 'no'), h('td', { class: 'num' }, (r.attempts || []).length),
  h('td', { class: 'num' }, ms(r.latency_ms)),
  h('td', { class: 'num' }, num((r.input_tokens || 0) + (r.output_tokens || 0))));
}

export const HEADERS = ['Time', 'Route', 'Outcome', 'Status', 'Served by', 'Fallback', 'Attempts', 'Latency', 'Tokens'];

function list(main, ctx, signal) {
  const results = h('div', { id: 'requests-body' });
  const field = (name, label, input) => h('label', {}, h('span', {}, label), input);
  const text = (name, placeholder) => h('input', { type: 'text', name, value: filters[name], placeholder });
  const choice = (name, options) => h('select', { name },
    options.map(([v, l]) => h('option', { value: v, selected: filters[name] === v }, l)));
  const form = h('form', { class: 'filters', id: 'filters', onsubmit: (e) => {
    e.preventDefault();
    for (const [k, v] of new FormData(form)) filters[k] = String(v).trim();
    load(null);
  } },
  field('route', 'Route', text('route', 'any')),
  field('target', 'Target', text('target', 'any')),
  field('outcome', 'Outcome', choice('outcome', [['', 'any'], ['success', 'success'], ['failed', 'failed'], ['cancelled', 'cancelled']])),
  field('key', 'Client key', text('key', 'any')),
  field('since', 'Since', choice('since', [['15m', '15 min'], ['1h', '1 h'], ['24h', '24 h'], ['7d', '7 days']])),
  h('button', { type: 'submit' }, 'Apply'));
  put(main, h('div', { class: 'page-head' }, h('h1', {}, 'Requests')), form, results);

  let rows = [];
  async function load(before) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
    if (before) q.set('before', before);
    try {
      const answer = await api.get('/admin/requests?' + q);
      if (signal.aborted) return;
      rows = before ? rows.concat(answer.requests) : answer.requests;
      const more = answer.next ? h('button', { type: 'button', id: 'older', onclick: () => load(answer.next) }, 'Older') : null;
      put(results, rows.length
        ? [table(HEADERS, rows.map(requestRow), { id: 'requests' }), more]
        : h('p', { class: 'empty', id: 'no-data' }, 'No requests match: none logged yet, or none with these filters.'));
    } catch (e) {
      if (signal.aborted) return;
      if (e.kind === 'missing') {
        put(results, h('p', { class: 'empty', id: 'no-log' }, 'This gateway keeps no request log (storage is off: ',
          h('code', {}, '[storage] enabled = false'), ').'));
      } else ctx.failed(e);
    }
  }
  load(null);
}

function detail(main, ctx, signal, id) {
  put(main, h('div', { class: 'page-head' }, h('h1', {}, 'Request'), h('a', { href: '#/requests' }, '← all requests')),
    h('p', { class: 'muted' }, 'Loading…'));
  api.get('/admin/requests/' + encodeURIComponent(id)).then((r) => {
    if (signal.aborted) return;
    const facts = [['Id', r.id], ['Time', when(r.time)], ['Route', r.route], ['API', r.api], ['Stream', r.stream ? 'yes' : 'no'],
      ['Client key', r.key || '—'], ['Status', r.status === null ? '—' : r.status], ['Outcome', outcome(r.outcome)],
      ['Served by', r.served_by || '—'], ['Fallback', r.fallback ? 'yes' : 'no'], ['Latency', ms(r.latency_ms)],
      ['First chunk', ms(r.first_chunk_ms)], ['Tokens', `${num(r.input_tokens)} in · ${num(r.output_tokens)} out`]];
    if (r.error) facts.push(['Error', `${r.error.kind}: ${r.error.message}`]);
    const parts = [h('dl', { class: 'facts', id: 'request-facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      h('h2', {}, 'Attempts'),
      (r.attempts || []).length ? timeline(r) : h('p', { class: 'empty' }, 'No attempt was made.')];
    if (r.request !== undefined && r.request !== null) parts.push(h('h2', {}, 'Request body'), h('pre', { class: 'body' }, r.request));
    if (r.response !== undefined && r.response !== null) parts.push(h('h2', {}, 'Response body'), h('pre', { class: 'body' }, r.response));
    put(main, h('div', { class: 'page-head' }, h('h1', {}, 'Request'), h('a', { href: '#/requests' }, '← all requests')), parts);
  }).catch((e) => {
    if (signal.aborted) return;
    if (e.kind === 'missing') put(main, h('p', { class: 'empty' }, 'No request with id ' + id + ' in the log.'), h('a', { href: '#/requests' }, '← all requests'));
    else ctx.failed(e);
  });
}

export function render(main, ctx, signal, args) {
  if (args && args[0]) detail(main, ctx, signal, decodeURIComponent(args[0]));
  else list(main, ctx, signal);
}
