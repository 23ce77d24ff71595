// The shell: log-in, navigation between the four pages, and the states "admin key missing" and
// "gateway unreachable". Each page module exports `render(main, ctx)` and may return a cleanup function.

import * as api from './api.js';
import { h, put } from './dom.js';
import * as overview from './overview.js';
import * as routes from './routes.js';
import * as requests from './requests.js';
import * as live from './live.js';

const PAGES = { overview, routes, requests, live };
const main = document.getElementById('main');
const banner = document.getElementById('banner');
const nav = document.getElementById('nav');
const logout = document.getElementById('logout');
let cleanup = null;

/** Shared between pages: the selected time window. */
const ctx = {
  window: '1h',
  failed,
  notice,
  recovered,
};

/** Hides an error message once a call works again. */
function recovered() {
  if (banner.classList.contains('error')) notice('');
}

/** A short message at the top ('' hides it). */
function notice(text, kind) {
  banner.hidden = !text;
  banner.className = 'banner ' + (kind || 'info');
  banner.textContent = text || '';
}

/** What a page does with an error from the admin API. */
function failed(error) {
  if (error && error.name === 'AbortError') return;
  if (error && error.kind === 'unauthorized') {
    api.forgetKey();
    login('The admin key was refused. Enter it again.');
  } else if (error && error.kind === 'disabled') {
    disabled();
  } else if (error && error.kind === 'unreachable') {
    notice('Gateway unreachable: ' + error.message + '. Retrying…', 'error');
  } else {
    notice('Error: ' + (error && error.message ? error.message : String(error)), 'error');
  }
}

function stop() {
  if (cleanup) cleanup();
  cleanup = null;
}

function chrome(loggedIn) {
  nav.hidden = !loggedIn;
  logout.hidden = !loggedIn;
}

/** The page shown when the gateway has no admin key: the admin API (and so this dashboard) is off. */
function disabled() {
  stop();
  chrome(false);
  notice('');
  put(main, h('section', { class: 'panel', id: 'admin-disabled' },
    h('h1', {}, 'Admin key missing'),
    h('p', {}, 'This gateway has no admin key configured, so its admin API and this dashboard are off.'),
    h('p', {}, 'Set ', h('code', {}, 'admin_key'), ' under ', h('code', {}, '[server]'), ' in the config file, for example:'),
    h('pre', {}, '[server]\nadmin_key = "${SWITCHYARD_ADMIN_KEY}"'),
    h('p', {}, 'then start the gateway with the environment variable ', h('code', {}, 'SWITCHYARD_ADMIN_KEY'),
      ' set, and reload this page.'),
    h('button', { type: 'button', onclick: () => boot() }, 'Check again')));
}

function unreachable(error) {
  stop();
  chrome(false);
  notice('');
  put(main, h('section', { class: 'panel', id: 'unreachable' },
    h('h1', {}, 'Gateway unreachable'),
    h('p', {}, 'The dashboard could not reach the gateway that served it: ' + error.message + '.'),
    h('p', {}, 'Check that it is still running; this page tries again every 5 seconds.'),
    h('button', { type: 'button', onclick: () => boot() }, 'Try now')));
  const timer = setTimeout(boot, 5000);
  cleanup = () => clearTimeout(timer);
}

/** Asks for the admin key; `message` says why (e.g. a refused key). */
function login(message) {
  stop();
  chrome(false);
  notice('');
  const input = h('input', { type: 'password', id: 'admin-key', name: 'admin-key', autocomplete: 'off',
    required: true, placeholder: 'admin key', 'aria-label': 'Admin key' });
  const error = h('p', { class: 'error', id: 'login-error', role: 'alert' }, message || '');
  error.hidden = !message;
  const submit = h('button', { type: 'submit', id: 'login-submit' }, 'Open dashboard');
  const form = h('form', { class: 'panel login', id: 'login', onsubmit: async (event) => {
    event.preventDefault();
    const candidate = input.value.trim();
    if (!candidate) return;
    submit.disabled = true;
    try {
      const answer = await api.check(candidate);
      if (answer === 'ok') {
        api.setKey(candidate);
        show();
      } else if (answer === 'disabled') {
        disabled();
      } else {
        error.textContent = 'That admin key was refused. Try again.';
        error.hidden = false;
        input.value = '';
        input.focus();
      }
    } catch (e) {
      error.textContent = 'Gateway unreachable: ' + e.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  } },
  h('h1', {}, 'Switchyard dashboard'),
  h('p', {}, 'Enter the gateway\'s admin key (', h('code', {}, 'admin_key'), ' under ', h('code', {}, '[server]'),
    '). It is kept in this tab only and sent to the admin API as a header.'),
  input, submit, error);
  put(main, form);
  input.focus();
}

function pageName() {
  const name = location.hash.replace(/^#\/?/, '').split('/')[0];
  return PAGES[name] ? name : 'overview';
}

/** Renders the page named in the URL's fragment. */
function show() {
  if (!api.key()) return boot();
  stop();
  chrome(true);
  notice('');
  const name = pageName();
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.page === name);
  document.title = 'Switchyard · ' + name[0].toUpperCase() + name.slice(1);
  put(main);
  const ctl = new AbortController();
  const pageCleanup = PAGES[name].render(main, ctx, ctl.signal, location.hash.replace(/^#\/?/, '').split('/').slice(1));
  cleanup = () => { ctl.abort(); if (typeof pageCleanup === 'function') pageCleanup(); };
}

/** Starts: with a key in this tab, straight to the page; else asks the gateway whether it wants one. */
async function boot() {
  stop();
  if (api.key()) return show();
  try {
    const answer = await api.check(null);
    if (answer === 'disabled') disabled();
    else login('');
  } catch (e) {
    unreachable(e);
  }
}

window.addEventListener('hashchange', () => { if (api.key()) show(); });
logout.addEventListener('click', () => { api.forgetKey(); login('Key forgotten. Enter it to continue.'); });
boot();
