const R = JSON.parse(document.getElementById('report').textContent);
const svgNS = 'http://www.w3.org/2000/svg';
const el = (tag, attrs, text) => { const e = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
  if (text !== undefined) e.textContent = text; return e; };
const sv = (tag, attrs) => { const e = document.createElementNS(svgNS, tag);
  Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v)); return e; };
const names = R.contexts.map(c => c.name);
const size = 640, mid = size / 2, ring = size / 2 - 70;
const pos = {};
names.forEach((n, i) => { const a = 2 * Math.PI * i / names.length - Math.PI / 2;
  pos[n] = [mid + ring * Math.cos(a), mid + ring * Math.sin(a)]; });
const links = {};
R.dependencies.forEach(d => { const k = d.source + '\u2192' + d.target;
  (links[k] = links[k] || {source: d.source, target: d.target, weight: 0, deps: []});
  links[k].weight += d.weight; links[k].deps.push(d); });
const svg = sv('svg', {width: size, height: size, viewBox: `0 0 ${size} ${size}`, id: 'contextmap'});
const defs = sv('defs'); const marker = sv('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 38,
  refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse'});
marker.appendChild(sv('path', {d: 'M 0 0 L 10 5 L 0 10 z', fill: '#999'}));
defs.appendChild(marker); svg.appendChild(defs);
Object.values(links).forEach(l => { const [x1, y1] = pos[l.source], [x2, y2] = pos[l.target];
  const line = sv('line', {x1, y1, x2, y2, class: 'link', 'marker-end': 'url(#arrow)',
    'stroke-width': Math.min(1 + l.weight / 10, 8), 'data-source': l.source,
    'data-target': l.target});
  line.addEventListener('click', () => showLink(l)); svg.appendChild(line); });
R.contexts.forEach(c => { const g = sv('g', {class: 'context', 'data-name': c.name});
  const [x, y] = pos[c.name];
  g.appendChild(sv('circle', {cx: x, cy: y, r: 14 + Math.min(Math.sqrt(c.models.length) * 6, 30)}));
  const t = sv('text', {x, y: y + 4}); t.textContent = c.name; g.appendChild(t);
  g.addEventListener('click', () => showContext(c.name)); svg.appendChild(g); });
document.getElementById('map').appendChild(svg);
const side = document.getElementById('side');
function evidenceList(d) { const ul = el('ul', {class: 'evidence'});
  d.evidence.forEach(e => { const li = el('li'); li.appendChild(el('code', {}, `${e.file}:${e.line}`));
    li.appendChild(document.createTextNode(' ' + e.detail)); ul.appendChild(li); });
  if (d.count > d.evidence.length) ul.appendChild(el('li', {class: 'muted'},
    `\u2026 and ${d.count - d.evidence.length} more`));
  return ul; }
function depBlock(d) { const div = el('div', {class: 'dependency'});
  div.appendChild(el('h3', {}, `${d.source} \u2192 ${d.target}: ${d.kind} (weight ${d.weight}, ${d.count} sites)`));
  div.appendChild(el('p', {class: 'muted'}, 'How to cut it: ' + d.suggestion));
  div.appendChild(evidenceList(d)); return div; }
function select(name) { document.querySelectorAll('.context').forEach(g =>
  g.classList.toggle('selected', g.dataset.name === name));
  document.querySelectorAll('.link').forEach(l => l.classList.toggle('hot',
    l.dataset.source === name || l.dataset.target === name)); }
function showContext(name) { select(name); history.replaceState(null, '', '#context=' + encodeURIComponent(name));
  const c = R.contexts.find(x => x.name === name); side.replaceChildren();
  const box = el('div', {id: 'details', 'data-context': name});
  box.appendChild(el('h2', {}, 'Context ' + name));
  [['apps', c.apps], ['models', c.models], ['tables', c.tables], ['tasks', c.tasks],
   ['endpoints', c.endpoints], ['modules', c.modules]].forEach(([k, v]) => {
    box.appendChild(el('p', {}, `${k} (${v.length}): ${v.join(', ') || '-'}`)); });
  const order = R.extraction_order.find(e => e.context === name);
  if (order) box.appendChild(el('p', {}, `Extraction rank ${order.rank}: ${order.reason}`));
  const deps = R.dependencies.filter(d => d.source === name || d.target === name);
  box.appendChild(el('h2', {}, `Dependencies (${deps.length})`));
  deps.forEach(d => box.appendChild(depBlock(d))); side.appendChild(box); }
function showLink(l) { select(null); side.replaceChildren();
  const box = el('div', {id: 'details', 'data-link': l.source + '\u2192' + l.target});
  box.appendChild(el('h2', {}, `${l.source} \u2192 ${l.target}`));
  l.deps.forEach(d => box.appendChild(depBlock(d))); side.appendChild(box); }
const m = R.metrics, b = m.baseline, table = document.getElementById('metrics');
['modularity', 'icp', 'ifn', 'ned', 'sm'].forEach(k => { const tr = el('tr');
  [k, m[k], b[k]].forEach(v => tr.appendChild(el('td', {}, String(v)))); table.appendChild(tr); });
function showOmnipresent(u) { select(null); side.replaceChildren();
  const box = el('div', {id: 'details', 'data-omnipresent': u.file});
  box.appendChild(el('h2', {}, `Omnipresent: ${u.file}`));
  box.appendChild(el('p', {}, `Uses the models of ${u.apps.length} apps (${u.apps.join(', ')}) ` +
    `in ${u.contexts.length} contexts, ${u.count} sites; it is in no context and its uses are ` +
    'not counted as dependencies.'));
  box.appendChild(el('p', {class: 'muted'}, 'Suggestion: ' + u.suggestion));
  u.contexts.forEach(c => { const div = el('div', {class: 'dependency'});
    div.appendChild(el('h3', {}, `${c.context}: ${c.kinds.join(', ')} (${c.count} sites)`));
    div.appendChild(el('p', {}, c.models.join(', '))); div.appendChild(evidenceList(c));
    box.appendChild(div); });
  side.appendChild(box); }
const omni = document.getElementById('omnipresent');
if ((R.omnipresent || []).length) {
  omni.appendChild(el('h2', {}, 'Omnipresent code, in no context'));
  R.omnipresent.forEach(u => { const btn = el('button', {class: 'omnipresent'},
    `${u.file} (${u.contexts.length} contexts)`);
    btn.addEventListener('click', () => { history.replaceState(null, '',
      '#omnipresent=' + encodeURIComponent(u.file)); showOmnipresent(u); });
    omni.appendChild(btn); }); }
const nav = document.getElementById('contexts');
R.extraction_order.forEach(e => { const btn = el('button', {}, `${e.rank}. ${e.context}`);
  btn.addEventListener('click', () => showContext(e.context)); nav.appendChild(btn); });
const wanted = decodeURIComponent((location.hash.match(/context=([^&]+)/) || [])[1] || '');
const unit = decodeURIComponent((location.hash.match(/omnipresent=([^&]+)/) || [])[1] || '');
const wantedUnit = (R.omnipresent || []).find(u => u.file === unit);
if (wantedUnit) showOmnipresent(wantedUnit);
else if (names.includes(wanted)) showContext(wanted);
else if (R.extraction_order.length) showContext(R.extraction_order[0].context);
