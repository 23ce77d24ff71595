// Building DOM without innerHTML: every value is text, so nothing from the API can inject markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function fill(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k in el && !(el instanceof SVGElement) && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** An HTML element: h('td', {class: 'num'}, 'text', child…). */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replaces an element's children. */
export function put(el, ...children) {
  el.replaceChildren();
  return fill(el, {}, children);
}

/** 1234567 → "1,234,567". */
export function num(n) {
  return n === null || n === undefined || Number.isNaN(n) ? '—' : Math.round(n).toLocaleString('en-US');
}

/** Milliseconds, short. */
export function ms(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return n >= 10000 ? (n / 1000).toFixed(1) + ' s' : Math.round(n) + ' ms';
}

/** A ratio as a percentage. */
export function pct(part, whole) {
  return whole > 0 ? (100 * part / whole).toFixed(1) + ' %' : '—';
}

/** An RFC 3339 time as local date and time, or a dash. */
export function when(t) {
  if (!t) return '—';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}

/** "3 min ago". */
export function ago(t) {
  if (!t) return '—';
  const secs = Math.round((Date.now() - new Date(t).getTime()) / 1000);
  if (Number.isNaN(secs)) return String(t);
  if (secs < 60) return Math.max(secs, 0) + ' s ago';
  if (secs < 3600) return Math.round(secs / 60) + ' min ago';
  if (secs < 86400) return Math.round(secs / 3600) + ' h ago';
  return Math.round(secs / 86400) + ' d ago';
}

/** A table with a header row; rows are arrays of cells (a cell may be a node or text). */
export function table(headers, rows, attrs) {
  return h('div', { class: 'scroll' },
    h('table', attrs || {},
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))),
      h('tbody', {}, rows.map((row) => labelled(headers, row)))));
}

/** Names each cell after its column, so a phone-width layout can show rows as cards. */
export function labelled(headers, row) {
  [...row.children].forEach((cell, i) => { cell.dataset.label = headers[i] || ''; });
  return row;
}

/** A breaker state as a coloured label. */
export function breaker(state) {
  const text = state === 'half_open' ? 'half-open' : (state || 'unknown');
  return h('span', { class: 'badge breaker-' + (state || 'unknown'), 'data-breaker': text }, text);
}

/** An outcome as a coloured label. */
export function outcome(o) {
  return h('span', { class: 'badge outcome-' + o }, o);
}
