// Overview: the window's totals and charts (from /admin/usage) and every target's breaker (/admin/routes).

import * as api from './api.js';
import { h, put, num, ms, pct, breaker, table, ago } from './dom.js';
import * as usage from './usage.js';
import { bars, lines } from './charts.js';
import { selector } from './window.js';

function stat(name, label, value, note) {
  return h('div', { class: 'stat' }, h('div', { class: 'stat-label' }, label),
    h('div', { class: 'stat-value', 'data-stat': name }, value), note ? h('div', { class: 'stat-note' }, note) : null);
}

/** Totals since the gateway started, from /admin/stats, when there is no usage store. */
function fromStats(stats) {
  return { requests: stats.total, success: stats.success, failed: stats.failed, cancelled: stats.cancelled,
    fallbacks: stats.fallbacks, input_tokens: null, output_tokens: null, p50_ms: null, p95_ms: null };
}

export function render(main, ctx, signal) {
  const body = h('div', { id: 'overview-body' });
  put(main, h('div', { class: 'page-head' }, h('h1', {}, 'Overview'), selector(ctx, refresh)), body);

  async function refresh() {
    try {
      const [buckets, routes, stats] = await Promise.all([
        usage.load(ctx.window, 'route'), api.get('/admin/routes'), api.get('/admin/stats')]);
      if (signal.aborted) return;
      ctx.recovered();
      draw(buckets, routes, stats);
    } catch (e) {
      if (!signal.aborted) ctx.failed(e);
    }
  }

  function draw(buckets, routes, stats) {
    const t = buckets ? usage.total(buckets) : fromStats(stats);
    const scope = buckets ? 'in the last ' + usage.WINDOWS[ctx.window].label : 'since the gateway started';
    const parts = [];
    if (!buckets) {
      parts.push(h('p', { class: 'note', id: 'no-usage' },
        'No usage history: this gateway has no request log (storage is off), so the numbers are its counters ',
        'since it started and there are no charts.'));
    }
    parts.push(h('div', { class: 'stats', id: 'totals', 'data-scope': buckets ? 'window' : 'since-start' },
      stat('requests', 'Requests', num(t.requests), scope),
      stat('success_rate', 'Success', pct(t.success, t.requests), num(t.success) + ' succeeded'),
      stat('failed', 'Failed', num(t.failed + t.cancelled), num(t.cancelled) + ' cancelled'),
      stat('fallbacks', 'Fallbacks', num(t.fallbacks), pct(t.fallbacks, t.requests) + ' of requests'),
      stat('p50', 'p50', ms(t.p50_ms), buckets ? '≈ over buckets' : 'needs the request log'),
      stat('p95', 'p95', ms(t.p95_ms), buckets ? '≈ over buckets' : 'needs the request log'),
      stat('tokens', 'Tokens', t.input_tokens === null ? '—' : num(t.input_tokens + t.output_tokens),
        t.input_tokens === null ? 'needs the request log' : num(t.input_tokens) + ' in · ' + num(t.output_tokens) + ' out'),
      stat('in_flight', 'In flight', num(stats.in_flight), 'now')));
    if (!t.requests) {
      parts.push(h('p', { class: 'empty', id: 'no-data' }, 'No data yet: no requests ' + scope + '. Send one to ',
        h('code', {}, 'POST /v1/chat/completions'), ' and it shows here.'));
    }
    if (buckets && t.requests) {
      const sl = usage.slots(ctx.window, buckets);
      parts.push(h('div', { class: 'charts' },
        bars('Requests', sl.map((x) => ({ start: x.start, values: [x.total.success, x.total.failed, x.total.cancelled] })),
          [{ name: 'success', cls: 'c-ok' }, { name: 'failed', cls: 'c-bad' }, { name: 'cancelled', cls: 'c-mid' }]),
        bars('Fallbacks', sl.map((x) => ({ start: x.start, values: [x.total.fallbacks] })),
          [{ name: 'fallbacks', cls: 'c-mid' }]),
        lines('Latency', sl.map((x) => ({ start: x.start, values: [x.total.p50_ms, x.total.p95_ms] })),
          [{ name: 'p50', cls: 'c-a' }, { name: 'p95', cls: 'c-b' }], ' ms'),
        bars('Tokens', sl.map((x) => ({ start: x.start, values: [x.total.input_tokens, x.total.output_tokens] })),
          [{ name: 'input', cls: 'c-a' }, { name: 'output', cls: 'c-b' }])));
    }
    const rows = [];
    for (const r of routes.routes) {
      for (const tg of r.targets) {
        rows.push(h('tr', { 'data-route': r.name, 'data-target': tg.id },
          h('td', {}, r.name), h('td', {}, tg.id), h('td', {}, breaker(tg.breaker)),
          h('td', {}, tg.breaker_since ? ago(tg.breaker_since) : '—'),
          h('td', {}, tg.enabled ? 'enabled' : 'disabled' + (tg.disabled_reason ? ' (' + tg.disabled_reason + ')' : ''))));
      }
    }
    parts.push(h('h2', {}, 'Breakers'));
    parts.push(rows.length ? table(['Route', 'Target', 'Breaker', 'Since', 'State'], rows, { id: 'breakers' })
      : h('p', { class: 'empty' }, 'No routes configured.'));
    put(body, parts);
  }

  refresh();
  const timer = setInterval(refresh, 5000);
  return () => clearInterval(timer);
}
