const R = JSON.parse(document.getElementById('report').textContent);
const HELP = JSON.parse(document.getElementById('metric-help').textContent);
const svgNS = 'http://www.w3.org/2000/svg';
const el = (tag, attrs, text) => { const e = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
  if (text !== undefined) e.textContent = text; return e; };
const sv = (tag, attrs) => { const e = document.createElementNS(svgNS, tag);
  Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v)); return e; };
const byId = id => document.getElementById(id);
const S = R.stats, M = R.metrics;

// Summary, seams, stats, metrics: the figures a reader checks first.
byId('summary').textContent = `${M.contexts} contexts proposed (one per app: ${M.baseline.contexts}). ` +
  'Click a context, an arrow or a dependency to see its evidence.';
if (R.seams) { byId('seams').textContent = R.seams.message; byId('seams').classList.toggle('bad', !R.seams.clean); }
[['files', S.files], ['lines', S.lines.toLocaleString('en')], ['apps', S.apps], ['models', S.models],
 ['modules', S.modules], ['endpoints', S.endpoints], ['Celery tasks', S.tasks],
 ['parse errors', S.parse_errors.length], ['unresolved constructs', S.unresolved.length],
 ['skipped paths', S.skipped.length]].forEach(([k, v]) => { const tr = el('tr');
  tr.appendChild(el('td', {}, k)); tr.appendChild(el('td', {}, String(v))); byId('stats').appendChild(tr); });
['modularity', 'icp', 'ifn', 'ned', 'sm'].forEach(k => { const tr = el('tr', {class: 'metric'});
  [k, M[k], M.baseline[k], HELP[k]].forEach(v => tr.appendChild(el('td', {}, String(v))));
  byId('metrics').appendChild(tr); });

// Links between contexts: one per direction, its dependencies kept for filtering.
const names = R.contexts.map(c => c.name);
const ctx = Object.fromEntries(R.contexts.map(c => [c.name, c]));
const links = {};
R.dependencies.forEach(d => { const k = d.source + '\u2192' + d.target;
  (links[k] = links[k] || {source: d.source, target: d.target, deps: []}).deps.push(d); });
const kinds = [...new Set(R.dependencies.map(d => d.kind))].sort();
const maxDep = Math.max(1, ...R.dependencies.map(d => d.weight));
const radius = n => 16 + Math.min(Math.sqrt(ctx[n].models.length) * 6, 30);

// Layout: a deterministic force simulation (same report, same picture). Linked contexts
// attract by weight, all repel, and circles plus their labels never overlap.
const size = 760, pos = {};
names.forEach((n, i) => { const a = 2 * Math.PI * i / names.length;
  pos[n] = {x: Math.cos(a) * 250, y: Math.sin(a) * 250}; });
const pairWeight = {};
Object.values(links).forEach(l => { const k = [l.source, l.target].sort().join('|');
  pairWeight[k] = (pairWeight[k] || 0) + l.deps.reduce((s, d) => s + d.weight, 0); });
const maxPair = Math.max(1, ...Object.values(pairWeight));
const room = n => Math.max(radius(n), n.length * 3.6);
for (let step = 0; step < 500; step++) {
  const cool = 1 - step / 500, move = {};
  names.forEach(n => { move[n] = {x: -pos[n].x * 0.01, y: -pos[n].y * 0.01}; });
  for (let i = 0; i < names.length; i++) for (let j = i + 1; j < names.length; j++) {
    const a = names[i], b = names[j]; let dx = pos[a].x - pos[b].x, dy = pos[a].y - pos[b].y;
    const d = Math.max(Math.hypot(dx, dy), 1); dx /= d; dy /= d;
    let f = 40000 / (d * d);
    const w = pairWeight[[a, b].sort().join('|')];
    if (w) f -= 0.02 * d * (0.3 + w / maxPair);
    const gap = room(a) + room(b) + 18; if (d < gap) f += (gap - d) * 0.5;
    move[a].x += dx * f; move[a].y += dy * f; move[b].x -= dx * f; move[b].y -= dy * f; }
  names.forEach(n => { const m = move[n], len = Math.hypot(m.x, m.y), cap = 30 * cool + 1;
    const k = len > cap ? cap / len : 1; pos[n].x += m.x * k; pos[n].y += m.y * k; }); }
// Contexts linked to nothing would stretch the picture: they go in a row along the bottom.
const linked = new Set(Object.values(links).flatMap(l => [l.source, l.target]));
const placed = names.filter(n => linked.has(n)), alone = names.filter(n => !linked.has(n));
const bottom = alone.length ? 90 : 0;
const xs = placed.map(n => pos[n].x), ys = placed.map(n => pos[n].y);
const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
const scale = Math.min((size - 160) / Math.max(maxX - minX, 1),
  (size - 160 - bottom) / Math.max(maxY - minY, 1));
placed.forEach(n => { pos[n] = {x: 80 + (pos[n].x - minX) * scale, y: 80 + (pos[n].y - minY) * scale}; });
alone.forEach((n, i) => { pos[n] = {x: 60 + (i + 0.5) * (size - 120) / alone.length, y: size - 60}; });

const svg = sv('svg', {width: size, height: size, viewBox: `0 0 ${size} ${size}`, id: 'contextmap'});
const defs = sv('defs'), marker = sv('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 9,
  refY: 5, markerWidth: 9, markerHeight: 9, orient: 'auto-start-reverse', markerUnits: 'userSpaceOnUse'});
marker.appendChild(sv('path', {d: 'M 0 0 L 10 5 L 0 10 z', fill: '#9aa'}));
defs.appendChild(marker); svg.appendChild(defs);
const linkEls = Object.values(links).map(l => { const a = pos[l.source], b = pos[l.target];
  const dx = b.x - a.x, dy = b.y - a.y, d = Math.max(Math.hypot(dx, dy), 1);
  const nx = -dy / d, ny = dx / d, bend = Math.min(40, d / 5);  // A->B and B->A curve apart
  const cx = (a.x + b.x) / 2 + nx * bend, cy = (a.y + b.y) / 2 + ny * bend;
  const ex = b.x - (b.x - cx) / Math.hypot(b.x - cx, b.y - cy) * (radius(l.target) + 2);
  const ey = b.y - (b.y - cy) / Math.hypot(b.x - cx, b.y - cy) * (radius(l.target) + 2);
  const path = sv('path', {d: `M ${a.x} ${a.y} Q ${cx} ${cy} ${ex} ${ey}`, class: 'link',
    'marker-end': 'url(#arrow)', 'data-source': l.source, 'data-target': l.target});
  const title = sv('title'); path.appendChild(title);
  path.addEventListener('click', () => showLink(l)); svg.appendChild(path);
  return {l, path, title}; });
R.contexts.forEach(c => { const kernel = !c.models.length;
  const g = sv('g', {class: 'context' + (kernel ? ' kernel' : ''), 'data-name': c.name});
  const {x, y} = pos[c.name];
  g.appendChild(sv('circle', {cx: x, cy: y, r: radius(c.name)}));
  const t = sv('text', {x, y: y + radius(c.name) + 14}); t.textContent = c.name; g.appendChild(t);
  const n = sv('text', {x, y: y + 4, class: 'count'}); n.textContent = c.models.length; g.appendChild(n);
  g.addEventListener('click', () => showContext(c.name)); svg.appendChild(g); });
byId('canvas').appendChild(svg);
byId('legend').textContent = 'Circle size: models owned (the number inside); grey dashed: owns no ' +
  'model (shared code). Arrow: "depends on", as wide as the weight of the dependencies shown.';

// Filters: by dependency kind and by minimum weight of a dependency.
const filters = byId('filters'), chosen = new Set(kinds);
kinds.forEach(k => { const label = el('label'); const box = el('input', {type: 'checkbox', 'data-kind': k});
  box.checked = true; box.addEventListener('change', () => { box.checked ? chosen.add(k) : chosen.delete(k); redraw(); });
  label.appendChild(box); label.appendChild(document.createTextNode(' ' + k)); filters.appendChild(label); });
const minLabel = el('label', {}, ' min weight '), range = el('input', {type: 'range', id: 'min-weight',
  min: 0, max: maxDep, step: maxDep / 50, value: 0});
range.addEventListener('input', redraw); minLabel.appendChild(range); filters.appendChild(minLabel);
const shown = d => chosen.has(d.kind) && d.weight >= Number(range.value);
function redraw() { const weights = linkEls.map(({l}) => l.deps.filter(shown).reduce((s, d) => s + d.weight, 0));
  const top = Math.max(1, ...weights);
  linkEls.forEach(({l, path, title}, i) => { const w = weights[i];
    path.classList.toggle('hidden', w === 0);
    path.setAttribute('stroke-width', (0.8 + 6 * Math.sqrt(w / top)).toFixed(2));
    title.textContent = `${l.source} \u2192 ${l.target}: weight ${+w.toFixed(2)}`; }); }
redraw();

// Side panel: a context, a link, an omnipresent unit.
const side = byId('side');
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
const prefixOwners = {};
R.contexts.forEach(c => (c.url_prefixes || []).forEach(p => (prefixOwners[p] = prefixOwners[p] || []).push(c.name)));
function showContext(name) { select(name); history.replaceState(null, '', '#context=' + encodeURIComponent(name));
  const c = ctx[name]; side.replaceChildren();
  const box = el('div', {id: 'details', 'data-context': name});
  box.appendChild(el('h2', {}, 'Context ' + name));
  const prefixes = (c.url_prefixes || []).map(p => prefixOwners[p].length > 1 ?
    `${p} (shared with ${prefixOwners[p].filter(o => o !== name).join(', ')})` : p);
  box.appendChild(el('p', {class: 'prefixes'}, 'URL prefixes it would take over at the proxy: ' +
    (prefixes.join(', ') || '-')));
  [['apps', c.apps], ['models', c.models], ['tables', c.tables], ['tasks', c.tasks],
   ['endpoints', c.endpoints], ['modules', c.modules]].forEach(([k, v]) => {
    box.appendChild(el('p', {}, `${k} (${v.length}): ${v.join(', ') || '-'}`)); });
  (R.shared_reference || []).filter(h => h.context === name).forEach(h => box.appendChild(el('p', {},
    `Shared reference: ${h.model} is related to from ${h.referenced_by.join(', ')}. ${h.suggestion}`)));
  const order = R.extraction_order.find(e => e.context === name);
  if (order) box.appendChild(el('p', {}, `Extraction rank ${order.rank}: ${order.reason}`));
  const deps = R.dependencies.filter(d => d.source === name || d.target === name);
  box.appendChild(el('h2', {}, `Dependencies (${deps.length})`));
  deps.forEach(d => box.appendChild(depBlock(d))); side.appendChild(box); }
function showLink(l) { select(null); side.replaceChildren();
  const box = el('div', {id: 'details', 'data-link': l.source + '\u2192' + l.target});
  box.appendChild(el('h2', {}, `${l.source} \u2192 ${l.target}`));
  l.deps.forEach(d => box.appendChild(depBlock(d))); side.appendChild(box); }
function showOmnipresent(u) { select(null); side.replaceChildren();
  const box = el('div', {id: 'details', 'data-omnipresent': u.file});
  box.appendChild(el('h2', {}, `Omnipresent: ${u.file}`));
  box.appendChild(el('p', {}, `Uses the models of ${u.apps.length} apps (${u.apps.join(', ')}) ` +
    `in ${u.contexts.length} contexts, ${u.count} sites; it is in no context, and --check holds ` +
    `it to the rules of ${u.context || 'no context (it is in no app)'}.`));
  box.appendChild(el('p', {class: 'muted'}, 'Suggestion: ' + u.suggestion));
  u.contexts.forEach(c => { const div = el('div', {class: 'dependency'});
    div.appendChild(el('h3', {}, `${c.context}: ${c.kinds.join(', ')} (${c.count} sites)`));
    div.appendChild(el('p', {}, c.models.join(', '))); div.appendChild(evidenceList(c));
    box.appendChild(div); });
  side.appendChild(box); }

// Heaviest dependencies, extraction order, omnipresent units.
[...R.dependencies].sort((a, b) => b.weight - a.weight || a.source.localeCompare(b.source)).slice(0, 10)
  .forEach(d => { const tr = el('tr', {class: 'heavy'});
    [`${d.source} \u2192 ${d.target}`, d.kind, String(d.weight), `${d.count} sites`].forEach(v =>
      tr.appendChild(el('td', {}, v)));
    tr.addEventListener('click', () => showLink(links[d.source + '\u2192' + d.target]));
    byId('heaviest').appendChild(tr); });
R.extraction_order.forEach(e => { const btn = el('button', {}, `${e.rank}. ${e.context}`);
  btn.addEventListener('click', () => showContext(e.context)); byId('contexts').appendChild(btn); });
const omni = byId('omnipresent');
if ((R.omnipresent || []).length) {
  omni.appendChild(el('h2', {}, 'Omnipresent code, in no context'));
  R.omnipresent.forEach(u => { const btn = el('button', {class: 'omnipresent'},
    `${u.file} (${u.contexts.length} contexts)`);
    btn.addEventListener('click', () => { history.replaceState(null, '',
      '#omnipresent=' + encodeURIComponent(u.file)); showOmnipresent(u); });
    omni.appendChild(btn); }); }

// Model -> context lookup and search over models and modules.
const members = R.contexts.flatMap(c => [...c.models.map(m => ['model', m, c.name]),
  ...c.modules.map(m => ['module', m, c.name])]);
function search(text) { const q = text.trim().toLowerCase(), ul = byId('found'); ul.replaceChildren();
  if (!q) return;
  members.filter(([, n]) => n.toLowerCase().includes(q)).slice(0, 60).forEach(([kind, n, c]) => {
    const li = el('li', {class: 'hit', 'data-context': c}); li.appendChild(el('code', {}, n));
    li.appendChild(document.createTextNode(` (${kind}) \u2192 ${c}`));
    li.addEventListener('click', () => showContext(c)); ul.appendChild(li); }); }
byId('search').addEventListener('input', e => search(e.target.value));

const hash = key => decodeURIComponent((location.hash.match(new RegExp(key + '=([^&]+)')) || [])[1] || '');
const unit = (R.omnipresent || []).find(u => u.file === hash('omnipresent'));
if (hash('find')) { byId('search').value = hash('find'); search(hash('find')); }
if (unit) showOmnipresent(unit);
else if (names.includes(hash('context'))) showContext(hash('context'));
else if (R.extraction_order.length) showContext(R.extraction_order[0].context);
