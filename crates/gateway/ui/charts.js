// Small SVG charts drawn here, no library: stacked bars and lines over time slots.

import { h, s, num } from './dom.js';

const W = 600;
const H = 160;
const PAD = { left: 64, right: 8, top: 10, bottom: 22 };

function frame(max, first, last, unit) {
  const ih = H - PAD.top - PAD.bottom;
  const g = s('g', { class: 'axis' });
  for (const f of [0, 0.5, 1]) {
    const y = PAD.top + ih * (1 - f);
    g.append(s('line', { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y }));
    g.append(s('text', { x: PAD.left - 4, y: y + 4, 'text-anchor': 'end' }, num(max * f) + (f === 1 ? unit : '')));
  }
  g.append(s('text', { x: PAD.left, y: H - 6 }, first));
  g.append(s('text', { x: W - PAD.right, y: H - 6, 'text-anchor': 'end' }, last));
  return g;
}

function label(t) {
  return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function legend(series) {
  return h('div', { class: 'legend' }, series.map((x) => h('span', { class: 'key ' + x.cls }, x.name)));
}

/** Stacked bars: slots [{start, values: [..]}], series [{name, cls}] in the order of values. */
export function bars(title, slots, series, unit) {
  const max = niceMax(Math.max(0, ...slots.map((x) => x.values.reduce((a, b) => a + b, 0))));
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const step = iw / Math.max(slots.length, 1);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title });
  if (slots.length) svg.append(frame(max, label(slots[0].start), label(slots[slots.length - 1].start), unit || ''));
  slots.forEach((slot, i) => {
    let y = PAD.top + ih;
    slot.values.forEach((v, k) => {
      if (!v) return;
      const bh = ih * v / max;
      y -= bh;
      svg.append(s('rect', { x: PAD.left + i * step + step * 0.1, y, width: Math.max(step * 0.8, 1), height: bh,
        class: series[k].cls }, s('title', {}, `${new Date(slot.start).toLocaleString()}: ${series[k].name} ${num(v)}`)));
    });
  });
  return h('figure', { class: 'chart-box' }, h('figcaption', {}, title), svg, legend(series));
}

/** Lines: slots [{start, values: [..]}] (null = no point), series [{name, cls}]. */
export function lines(title, slots, series, unit) {
  const all = slots.flatMap((x) => x.values).filter((v) => v !== null && v !== undefined);
  const max = niceMax(Math.max(0, ...all));
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const step = iw / Math.max(slots.length, 1);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title });
  if (slots.length) svg.append(frame(max, label(slots[0].start), label(slots[slots.length - 1].start), unit || ''));
  series.forEach((ser, k) => {
    let d = '';
    slots.forEach((slot, i) => {
      const v = slot.values[k];
      if (v === null || v === undefined) return;
      const x = PAD.left + i * step + step / 2;
      const y = PAD.top + ih * (1 - v / max);
      d += (d ? ' L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1);
      svg.append(s('circle', { cx: x, cy: y, r: 2.5, class: ser.cls },
        s('title', {}, `${new Date(slot.start).toLocaleString()}: ${ser.name} ${num(v)}${unit || ''}`)));
    });
    if (d) svg.append(s('path', { d, class: 'line ' + ser.cls }));
  });
  return h('figure', { class: 'chart-box' }, h('figcaption', {}, title), svg, legend(series));
}

/** A request's attempts as a timeline: one row per attempt, bars scaled to the request's duration. */
export function timeline(row) {
  const attempts = row.attempts || [];
  const total = Math.max(row.latency_ms || 0, attempts.reduce((a, x) => a + (x.hedge ? 0 : (x.latency_ms || 0)), 0), 1);
  const rowH = 26;
  const left = 0;
  const svgW = W;
  let clock = 0;
  const items = attempts.map((a, i) => {
    const skipped = a.outcome === 'skipped';
    const dur = a.latency_ms || 0;
    // Attempts run one after another; a hedge runs beside the attempt it hedges and ends with the request
    // when it wins, so it is drawn ending at the request's end.
    const start = a.hedge ? Math.max(total - dur, 0) : clock;
    if (!a.hedge && !skipped) clock += dur;
    const tags = [];
    if (a.hedge) tags.push('hedge');
    if (a.retry) tags.push('retry ' + a.retry);
    const text = skipped
      ? `skipped: ${a.reason || 'no reason given'}`
      : [a.outcome, a.kind, a.status, Math.round(dur) + ' ms'].filter((x) => x !== null && x !== undefined && x !== '').join(' · ');
    const bar = skipped ? null : s('svg', { viewBox: `0 0 ${svgW} ${rowH}`, class: 'bar', preserveAspectRatio: 'none' },
      s('rect', { x: left + svgW * start / total, y: 4, width: Math.max(svgW * dur / total, 2), height: rowH - 8,
        class: 'outcome-' + a.outcome }));
    return h('li', { class: 'attempt' + (skipped ? ' skipped' : '') + (a.hedge ? ' hedge' : ''), 'data-attempt': i },
      h('div', { class: 'attempt-head' },
        h('strong', {}, a.target),
        tags.map((t) => h('span', { class: 'tag' }, t)),
        skipped ? h('span', { class: 'tag skipped' }, 'skipped') : null),
      bar,
      h('div', { class: 'attempt-text' }, text));
  });
  return h('ol', { class: 'timeline', id: 'timeline' }, items);
}
