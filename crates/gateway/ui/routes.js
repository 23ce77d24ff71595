// Routes: each route's targets in /admin/routes order, with their runtime settings editable (one PATCH per
// change, shown as a resettable override), breaker, last failure and recovery, and the window's traffic.

import * as api from './api.js';
import { h, put, num, ms, pct, breaker, when, ago, table } from './dom.js';
import * as usage from './usage.js';
import { selector } from './window.js';

function overrideText(o) {
  const fields = ['enabled', 'priority', 'max_retries'].filter((k) => o[k] !== undefined && o[k] !== null)
    .map((k) => `${k} = ${o[k]}`);
  return (fields.join(', ') || 'override') + (o.by ? ' by ' + o.by : '') + (o.at ? ', ' + ago(o.at) : '');
}

export function render(main, ctx, signal) {
  const body = h('div', { id: 'routes-body' });
  put(main, h('div', { class: 'page-head' }, h('h1', {}, 'Routes'), selector(ctx, refresh)), body);
  let busy = false;

  async function change(route, id, patch) {
    busy = true;
    try {
      await api.call('PATCH', `/admin/routes/${api.seg(route)}/targets/${api.seg(id)}`, patch);
      ctx.notice(`${id} in ${route}: ${Object.entries(patch).map(([k, v]) => k + ' = ' + v).join(', ')}`, 'info');
    } catch (e) {
      ctx.failed(e);
    } finally {
      busy = false;
      refresh();
    }
  }

  async function reset(route, id) {
    busy = true;
    try {
      await api.call('DELETE', `/admin/routes/${api.seg(route)}/targets/${api.seg(id)}/override`);
      ctx.notice(`${id} in ${route}: back to its config values`, 'info');
    } catch (e) {
      ctx.failed(e);
    } finally {
      busy = false;
      refresh();
    }
  }

  function numberInput(route, t, field, min) {
    return h('input', { type: 'number', class: 'small', min, step: 1, value: String(t[field]),
      'data-field': field, 'aria-label': `${field} of ${t.id} in ${route}`,
      onchange: (e) => {
        const v = parseInt(e.target.value, 10);
        if (Number.isInteger(v) && v >= min) change(route, t.id, { [field]: v });
      } });
  }

  function targetRow(route, t, traffic) {
    const o = t.override;
    const toggle = h('input', { type: 'checkbox', checked: t.enabled, 'data-field': 'enabled',
      'aria-label': `${t.id} enabled in ${route}`, onchange: (e) => change(route, t.id, { enabled: e.target.checked }) });
    return h('tr', { 'data-route': route, 'data-target': t.id, class: t.enabled ? '' : 'off' },
      h('td', {}, h('strong', {}, t.id), t.is_current ? h('span', { class: 'tag' }, 'current') : null,
        !t.enabled && t.disabled_reason ? h('div', { class: 'muted' }, t.disabled_reason) : null),
      h('td', {}, h('label', { class: 'switch' }, toggle, h('span', {}, t.enabled ? 'on' : 'off'))),
      h('td', {}, numberInput(route, t, 'priority', 0)),
      h('td', {}, numberInput(route, t, 'max_retries', 0)),
      h('td', { 'data-cell': 'override' }, o
        ? [h('span', { class: 'override' }, overrideText(o)), ' ',
          h('button', { type: 'button', class: 'link', 'data-action': 'reset', onclick: () => reset(route, t.id) }, 'Reset')]
        : h('span', { class: 'muted' }, 'config')),
      h('td', {}, breaker(t.breaker), h('div', { class: 'muted' }, t.breaker_since ? 'since ' + when(t.breaker_since) : '')),
      h('td', {}, t.last_failure ? ago(t.last_failure) : '—'),
      h('td', {}, t.last_recovery ? ago(t.last_recovery) : '—'),
      h('td', { class: 'num', 'data-cell': 'calls' }, traffic ? num(traffic.calls) : '—'),
      h('td', { class: 'num' }, traffic ? traffic.success : '—'),
      h('td', { class: 'num' }, traffic ? traffic.p50 : '—'));
  }

  /** Per target: calls, success rate, p50 over the window (or since start, without the request log). */
  function trafficOf(buckets, stats) {
    const out = new Map();
    if (buckets) {
      for (const [id, t] of usage.byGroup(buckets)) {
        out.set(id, { calls: t.requests, success: pct(t.success, t.requests), p50: ms(t.p50_ms) });
      }
    } else {
      for (const [id, t] of Object.entries(stats.targets || {})) {
        out.set(id, { calls: t.attempts, success: pct(t.successes, t.attempts),
          p50: t.attempts ? ms(t.mean_latency_ms) + ' (mean)' : '—' });
      }
    }
    return out;
  }

  async function refresh() {
    try {
      const [routes, buckets, stats] = await Promise.all([
        api.get('/admin/routes'), usage.load(ctx.window, 'target'), api.get('/admin/stats')]);
      if (signal.aborted) return;
      ctx.recovered();
      draw(routes, buckets, stats);
    } catch (e) {
      if (!signal.aborted) ctx.failed(e);
    }
  }

  function draw(routes, buckets, stats) {
    const traffic = trafficOf(buckets, stats);
    const scope = buckets ? 'last ' + usage.WINDOWS[ctx.window].label : 'since start';
    if (!routes.routes.length) {
      put(body, h('p', { class: 'empty' }, 'No routes configured: add a [routes.NAME] table to the config.'));
      return;
    }
    put(body, routes.routes.map((r) => h('section', { class: 'route', 'data-route': r.name },
      h('h2', {}, r.name),
      table(['Target', 'Enabled', 'Priority', 'Max retries', 'Override', 'Breaker', 'Last failure', 'Last recovery',
        'Calls (' + scope + ')', 'Success', 'p50'],
      r.targets.map((t) => targetRow(r.name, t, traffic.get(t.id))), { class: 'targets' }))));
  }

  refresh();
  // Refresh unless the operator is typing in a field or a change is on its way.
  const timer = setInterval(() => {
    if (!busy && !(document.activeElement && body.contains(document.activeElement) && document.activeElement.type === 'number')) refresh();
  }, 5000);
  return () => clearInterval(timer);
}
