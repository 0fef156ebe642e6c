// Elements (through shadow roots) of the visible tab panel whose right edge passes the panel's.
(slack) => {
  const out = [];
  const host = document.querySelector('.main-tabs');
  const root = host.shadowRoot || host;
  const panels = Array.from(root.querySelectorAll(':scope > div, .bk-panel, [class*="panel"]'));
  const hb = host.getBoundingClientRect();
  const right = Math.min(hb.right, window.innerWidth) + slack;
  const walk = (node, depth) => {
    if (depth > 60) return;
    const kids = node.shadowRoot ? [...node.shadowRoot.children, ...node.children] : [...node.children];
    for (const el of kids) {
      if (!(el instanceof Element)) continue;
      const r = el.getBoundingClientRect();
      const st = getComputedStyle(el);
      if (st.display === 'none' || st.visibility === 'hidden' || r.width === 0 || r.height === 0) continue;
      if (r.right > right) {
        out.push({tag: el.tagName, cls: String(el.className).slice(0, 80), right: Math.round(r.right),
                  width: Math.round(r.width)});
        continue;  // report the outermost offender only
      }
      // content clipped or scrolled inside a box is not wider than the tab
      if (['auto', 'scroll', 'hidden'].includes(st.overflowX) && el !== host) continue;
      walk(el, depth + 1);
    }
  };
  walk(host, 0);
  return {right: Math.round(right - slack), viewport: window.innerWidth, offenders: out.slice(0, 12)};
}
