// The admin API, with the admin key kept in this tab only (sessionStorage: gone when the tab closes, never
// in localStorage, a cookie or the URL). Every call sends it as `Authorization: Bearer`.

const KEY = 'switchyard.admin_key';

/** Why a call failed: 'unauthorized' (wrong key), 'disabled' (no admin_key configured), 'unreachable'
 *  (no answer from the gateway), 'missing' (the endpoint is not there, e.g. storage off) or 'http'. */
export class ApiError extends Error {
  constructor(kind, status, message) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

export function key() {
  return sessionStorage.getItem(KEY);
}

export function setKey(k) {
  sessionStorage.setItem(KEY, k);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

async function errorOf(response) {
  let message = response.status + ' ' + response.statusText;
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) message = body.error.message;
  } catch (_) { /* not JSON: keep the status line */ }
  const kind = response.status === 401 ? 'unauthorized'
    : response.status === 403 ? 'disabled'
    : response.status === 404 || response.status === 405 ? 'missing' : 'http';
  return new ApiError(kind, response.status, message);
}

async function send(method, path, body, withKey, signal) {
  const headers = { accept: 'application/json' };
  if (withKey !== null) headers.authorization = 'Bearer ' + withKey;
  if (body !== undefined) headers['content-type'] = 'application/json';
  try {
    return await fetch(path, {
      method, headers, signal, cache: 'no-store', credentials: 'omit',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError('unreachable', 0, 'the gateway did not answer (' + e.message + ')');
  }
}

/** Calls the admin API with the tab's key; resolves to the JSON answer or throws an ApiError. */
export async function call(method, path, body) {
  const response = await send(method, path, body, key());
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

export const get = (path) => call('GET', path);

/** What the gateway says to a key (or to none): 'ok', 'unauthorized', 'disabled'; throws when unreachable. */
export async function check(candidate) {
  const response = await send('GET', '/admin/stats', undefined, candidate);
  if (response.ok) return 'ok';
  const e = await errorOf(response);
  if (e.kind === 'unauthorized' || e.kind === 'disabled') return e.kind;
  throw e;
}

/** A path segment: ids like `openai/gpt-4o` are percent-encoded (`openai%2Fgpt-4o`). */
export const seg = encodeURIComponent;

/** Reads `/admin/events` (Server-Sent Events) with fetch, so the key goes in a header, not the URL.
 *  Calls onOpen() once the stream is open, then onEvent(name, data) per event until `signal` aborts; throws an ApiError when the stream cannot start
 *  or ends. */
export async function events(onEvent, signal, onOpen) {
  const response = await send('GET', '/admin/events', undefined, key(), signal);
  if (!response.ok) throw await errorOf(response);
  if (onOpen) onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError('unreachable', 0, 'the event stream broke (' + e.message + ')');
    }
    if (chunk.done) throw new ApiError('unreachable', 0, 'the gateway closed the event stream');
    buffer += chunk.value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') name = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length === 0) continue;
      let parsed;
      try { parsed = JSON.parse(data.join('\n')); } catch (_) { parsed = data.join('\n'); }
      onEvent(name, parsed);
    }
  }
}
