// `/admin/usage` over the selected window: the query, totals, and buckets laid on a complete time axis.

import * as api from './api.js';

/** The windows the pages offer, with the bucket each is drawn in. */
export const WINDOWS = {
  '15m': { label: '15 min', bucket: '1m', bucketMs: 60e3, spanMs: 15 * 60e3 },
  '1h': { label: '1 h', bucket: '1m', bucketMs: 60e3, spanMs: 60 * 60e3 },
  '24h': { label: '24 h', bucket: '1h', bucketMs: 3600e3, spanMs: 24 * 3600e3 },
};

/** Fetches the window's buckets grouped `by`; null when the gateway has no usage (storage off). */
export async function load(windowName, by) {
  const w = WINDOWS[windowName];
  try {
    const answer = await api.get(`/admin/usage?since=${windowName}&bucket=${w.bucket}&by=${by}`);
    return answer.buckets || [];
  } catch (e) {
    if (e.kind === 'missing') return null;
    throw e;
  }
}

/** Sums buckets into one total; p50/p95 are the request-weighted mean of the buckets' values (approximate). */
export function total(buckets) {
  const t = { requests: 0, success: 0, failed: 0, cancelled: 0, fallbacks: 0, input_tokens: 0, output_tokens: 0 };
  let w50 = 0, n50 = 0, w95 = 0, n95 = 0;
  for (const b of buckets) {
    for (const k of Object.keys(t)) t[k] += b[k] || 0;
    if (b.p50_ms !== null && b.p50_ms !== undefined) { w50 += b.p50_ms * b.requests; n50 += b.requests; }
    if (b.p95_ms !== null && b.p95_ms !== undefined) { w95 += b.p95_ms * b.requests; n95 += b.requests; }
  }
  t.p50_ms = n50 ? w50 / n50 : null;
  t.p95_ms = n95 ? w95 / n95 : null;
  return t;
}

/** Totals per group (e.g. per target). */
export function byGroup(buckets) {
  const groups = new Map();
  for (const b of buckets) {
    const key = b.group === null || b.group === undefined ? '' : b.group;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(b);
  }
  return new Map([...groups].map(([k, v]) => [k, total(v)]));
}

/** Every bucket start of the window, oldest first, each with the totals of the buckets starting then. */
export function slots(windowName, buckets) {
  const w = WINDOWS[windowName];
  const now = Date.now();
  const last = Math.floor(now / w.bucketMs) * w.bucketMs;
  const first = last - w.spanMs + w.bucketMs;
  const byStart = new Map();
  for (const b of buckets) {
    const t = Math.floor(new Date(b.start).getTime() / w.bucketMs) * w.bucketMs;
    if (!byStart.has(t)) byStart.set(t, []);
    byStart.get(t).push(b);
  }
  const out = [];
  for (let t = first; t <= last; t += w.bucketMs) out.push({ start: t, total: total(byStart.get(t) || []) });
  return out;
}
