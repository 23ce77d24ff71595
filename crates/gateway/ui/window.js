// The 15 min / 1 h / 24 h selector shared by Overview and Routes.

import { h } from './dom.js';
import { WINDOWS } from './usage.js';

/** Buttons that set ctx.window and call onChange. */
export function selector(ctx, onChange) {
  const buttons = Object.entries(WINDOWS).map(([name, w]) => h('button', {
    type: 'button', class: 'seg' + (ctx.window === name ? ' active' : ''), 'data-window': name,
    'aria-pressed': ctx.window === name ? 'true' : 'false',
    onclick: () => {
      ctx.window = name;
      for (const b of buttons) {
        b.classList.toggle('active', b.dataset.window === name);
        b.setAttribute('aria-pressed', b.dataset.window === name ? 'true' : 'false');
      }
      onChange();
    },
  }, w.label));
  return h('div', { class: 'segmented', role: 'group', 'aria-label': 'Time window' }, buttons);
}
