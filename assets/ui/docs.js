// Renders /api/v1/openapi.json as a browsable list: method, path, summary, scope, and the schemas on demand.
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e[k] = v;
  }
  e.append(...children);
  return e;
};

const doc = await (await fetch('/api/v1/openapi.json')).json();
document.getElementById('intro').textContent = `${doc.info.title} ${doc.info.version}. ${doc.info.description}`;
const byTag = new Map();
for (const [path, ops] of Object.entries(doc.paths)) {
  for (const [method, op] of Object.entries(ops)) {
    const tag = op.tags?.[0] ?? 'other';
    if (!byTag.has(tag)) byTag.set(tag, []);
    byTag.get(tag).push({ path, method, op });
  }
}
const out = document.getElementById('ops');
for (const [tag, ops] of byTag) {
  const section = el('section', { class: 'card' }, el('h2', { text: tag }));
  for (const { path, method, op } of ops) {
    const detail = el('details', {}, el('summary', { text: op.summary }), el('pre', { text: JSON.stringify({ parameters: op.parameters, requestBody: op.requestBody, responses: op.responses }, null, 2) }));
    section.append(el('div', { class: 'op' }, el('span', { class: 'method', text: method.toUpperCase() }), el('code', { text: path }), detail, el('span', { class: 'scope', text: op['x-required-scope'] })));
  }
  out.append(section);
}
