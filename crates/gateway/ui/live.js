// Live: finished requests as they arrive on /admin/events, and breaker or enable changes, without reloading.

import * as api from './api.js';
import { h, put, when, breaker, labelled } from './dom.js';
import { requestRow, HEADERS } from './requests.js';

const KEEP = 200;

export function render(main, ctx, signal) {
  const state = h('span', { class: 'badge', id: 'live-state' }, 'connecting…');
  const tbody = h('tbody', { id: 'live-requests' });
  const empty = h('p', { class: 'empty', id: 'no-data' }, 'Waiting for requests: each finished request shows here as it ends.');
  const changes = h('ul', { class: 'changes', id: 'live-targets' });
  const quiet = h('p', { class: 'muted' }, 'No breaker or enable change since this page opened.');
  put(main, h('div', { class: 'page-head' }, h('h1', {}, 'Live'), state), empty,
    h('div', { class: 'scroll' }, h('table', { id: 'live' }, h('thead', {}, h('tr', {}, HEADERS.map((x) => h('th', {}, x)))), tbody)),
    h('h2', {}, 'Target changes'), quiet, changes);

  function onEvent(name, data) {
    if (name === 'request' && data && data.id) {
      empty.hidden = true;
      tbody.prepend(labelled(HEADERS, requestRow(data)));
      while (tbody.children.length > KEEP) tbody.lastChild.remove();
    } else if (name === 'target' && data) {
      quiet.hidden = true;
      changes.prepend(h('li', {}, when(data.at), ' · ', data.route || 'all routes', ' · ', h('strong', {}, data.target), ' · ',
        breaker(data.breaker), ' · ', data.enabled ? 'enabled' : 'disabled'));
      while (changes.children.length > 50) changes.lastChild.remove();
    }
  }

  (async () => {
    while (!signal.aborted) {
      try {
        state.textContent = 'connecting…';
        state.className = 'badge';
        await api.events(onEvent, signal, () => {
          state.textContent = 'live';
          state.className = 'badge outcome-success';
        });
      } catch (e) {
        if (signal.aborted) return;
        if (e.kind === 'unauthorized' || e.kind === 'disabled') return ctx.failed(e);
        if (e.kind === 'missing') {
          state.textContent = 'unavailable';
          put(empty, 'This gateway has no event stream (/admin/events answered 404).');
          return;
        }
        state.textContent = 'reconnecting…';
        state.className = 'badge outcome-failed';
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  })();
}
