// The web page of machine states. Plain ES module, no build step. Every value from the server reaches the page
// through textContent or attributes set by the DOM API, never through HTML parsing, so a hostname such as
// "<script>" stays text.

const STATES = ['discovered', 'booting', 'config-served', 'installing', 'installed', 'running', 'ready', 'failed'];
const PAGE = 50;
// The boot journey the machine page leads with; a stage is reached by the first event whose kind matches
// (kinds as the dhcp, tftp, ipxe, assets, configserve and events modules write them). Joined is the ready state.
const STAGES = [
  ['DHCP', /^dhcp\./],
  ['TFTP', /^tftp\./],
  ['Script', /^ipxe\.script$/],
  ['Kernel', /^asset\.kernel$/],
  ['Initrd', /^asset\.initr/],
  ['Config', /^config\.served$/],
  ['Talos', /^talos\./],
  ['Joined', /^talos\.joined$/],
];
// Events that report something going wrong are shown in red.
const TROUBLE = /(^alert\.|\.(refused|error|failed)$)/;

const $ = (id) => document.getElementById(id);
const session = { csrf: null, name: null, scope: null };
const list = { offset: 0, total: 0, filters: {}, rows: new Map() };
let current = null; // the machine id on the machine page
let stream = null;
let reloadTimer = null;

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function when(isoTime) {
  if (!isoTime) return '';
  const d = new Date(isoTime);
  const ago = Math.round((Date.now() - d.getTime()) / 1000);
  if (ago < 60) return `${Math.max(ago, 0)} s ago`;
  if (ago < 3600) return `${Math.round(ago / 60)} min ago`;
  if (ago < 86400) return `${Math.round(ago / 3600)} h ago`;
  return d.toISOString().slice(0, 16).replace('T', ' ');
}

class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && session.csrf) headers['x-csrf-token'] = session.csrf;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new HttpError(res.status, data.error?.code ?? 'error', data.error?.message ?? `HTTP ${res.status}`);
    if (res.status === 401) showLogin();
    throw err;
  }
  return data;
}

function show(view) {
  for (const v of ['login-view', 'list-view', 'machine-view']) $(v).hidden = v !== view;
  $('logout').hidden = view === 'login-view';
}

// ---- login ----

function showLogin() {
  session.csrf = null;
  stream?.close();
  stream = null;
  $('live').hidden = true;
  $('who').textContent = '';
  show('login-view');
  $('token').focus();
}

async function login(ev) {
  ev.preventDefault();
  $('login-error').textContent = '';
  try {
    const s = await api('POST', '/api/v1/session', { token: $('token').value.trim() });
    $('token').value = '';
    started(s);
  } catch (err) {
    $('login-error').textContent = err.message;
  }
}

function started(s) {
  session.csrf = s.csrfToken;
  session.name = s.name;
  session.scope = s.scope;
  $('who').textContent = `${s.name} (${s.scope})`;
  connect();
  route();
}

async function logout() {
  await api('DELETE', '/api/v1/session').catch(() => {});
  showLogin();
}

// ---- live updates ----

function connect() {
  stream?.close();
  stream = new EventSource('/api/v1/events/stream');
  stream.onopen = () => ($('live').hidden = false);
  stream.onerror = () => ($('live').hidden = true);
  stream.addEventListener('timeline', (msg) => {
    let e;
    try {
      e = JSON.parse(msg.data);
    } catch {
      return;
    }
    onEvent(e);
  });
}

function onEvent(e) {
  if (!$('machine-view').hidden && e.machineId === current) {
    addEvent(e, true);
    refreshMachineHead();
    return;
  }
  if ($('list-view').hidden) return;
  if (e.machineId && list.rows.has(e.machineId)) refreshRow(e.machineId);
  // Something not on this page changed (maybe a new machine): reload the page soon, not on every event.
  else reloadTimer ??= setTimeout(() => {
    reloadTimer = null;
    loadList();
  }, 1500);
}

// ---- machine table ----

function readFilters() {
  const f = {};
  for (const [key, id] of [['q', 'f-q'], ['state', 'f-state'], ['acceptance', 'f-acceptance'], ['profile', 'f-profile'], ['label', 'f-label']]) {
    const v = $(id).value.trim();
    if (v) f[key] = v;
  }
  return f;
}

async function loadList() {
  const params = new URLSearchParams({ ...list.filters, limit: String(PAGE), offset: String(list.offset) });
  $('list-error').textContent = '';
  let data;
  try {
    data = await api('GET', `/api/v1/machines?${params}`);
  } catch (err) {
    $('list-error').textContent = err.message;
    return;
  }
  list.total = data.total;
  list.rows.clear();
  const body = $('rows');
  body.replaceChildren(...data.items.map(row));
  $('count').textContent = `${data.total} machine${data.total === 1 ? '' : 's'}`;
  const last = Math.min(data.offset + data.items.length, data.total);
  $('page').textContent = data.total ? `${data.offset + 1}–${last} of ${data.total}` : '';
  $('prev').disabled = data.offset === 0;
  $('next').disabled = last >= data.total;
}

function row(m) {
  const tr = el('tr', { 'data-id': m.id });
  list.rows.set(m.id, tr);
  fillRow(tr, m);
  return tr;
}

function fillRow(tr, m) {
  const name = el('a', { href: `#/machines/${encodeURIComponent(m.id)}`, text: m.hostname || m.id });
  const actions = el('td');
  if (m.acceptance === 'pending' && canOperate()) {
    actions.append(el('button', { type: 'button', class: 'small', text: 'Accept', onclick: () => act(m.id, 'accept').then(() => refreshRow(m.id)) }));
  }
  tr.replaceChildren(
    el('td', {}, badge(m)),
    el('td', {}, name),
    el('td', { class: 'mono', text: m.macs.join(' ') }),
    el('td', { class: 'mono', text: m.ip ?? '' }),
    el('td', { text: m.arch ?? '' }),
    el('td', { text: m.profile ?? '' }),
    el('td', { text: when(m.lastSeen), title: m.lastSeen }),
    actions,
  );
}

function badge(m) {
  const wrap = el('span', { class: 'badges' }, el('span', { class: `state s-${m.state}`, text: m.state }));
  if (m.acceptance !== 'accepted') wrap.append(el('span', { class: `acc a-${m.acceptance}`, text: m.acceptance }));
  if (m.reprovision) wrap.append(el('span', { class: 'acc a-reprovision', text: 'reprovision' }));
  return wrap;
}

async function refreshRow(id) {
  const tr = list.rows.get(id);
  if (!tr) return;
  try {
    const { machine } = await api('GET', `/api/v1/machines/${encodeURIComponent(id)}`);
    fillRow(tr, machine);
    tr.classList.remove('flash');
    void tr.offsetWidth;
    tr.classList.add('flash');
  } catch {
    // Deleted meanwhile: the next page load drops it.
  }
}

function canOperate() {
  return session.scope === 'operator' || session.scope === 'admin';
}

async function act(id, what) {
  return api('POST', `/api/v1/machines/${encodeURIComponent(id)}/${what}`, {});
}

// ---- machine page ----

async function loadMachine(id) {
  current = id;
  $('m-error').textContent = '';
  let data;
  try {
    data = await api('GET', `/api/v1/machines/${encodeURIComponent(id)}`);
  } catch (err) {
    $('m-title').textContent = id;
    $('m-error').textContent = err.message;
    return;
  }
  head(data.machine);
  $('events').replaceChildren();
  renderStages([]);
  for (const e of data.timeline) addEvent(e);
  $('kmsg').textContent = data.kernelLog.length ? data.kernelLog.map((l) => `${l.talosTime ?? l.at ?? ''} ${l.msg ?? l.message ?? JSON.stringify(l)}`).join('\n') : 'No kernel log received yet.';
  $('facts').replaceChildren(
    ...[
      ['ID', data.machine.id],
      ['UUID', data.machine.uuid],
      ['Serial', data.machine.serial],
      ['Manufacturer', data.machine.manufacturer],
      ['Product', data.machine.product],
      ['Arch', data.machine.arch],
      ['Firmware', data.machine.platform],
      ['Labels', Object.entries(data.machine.labels).map(([k, v]) => `${k}=${v}`).join(', ')],
      ['Profile', ''],
      ['First seen', data.machine.firstSeen],
    ].flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v ?? '' })]),
  );
  explainProfile(id);
  $('nics').replaceChildren(...data.nics.map((n) => el('tr', {}, el('td', { class: 'mono', text: n.mac }), el('td', { class: 'mono', text: n.ip ?? '' }), el('td', { text: n.firstSeen }), el('td', { text: n.lastSeen }))));
}

// "Which profile would it get, and why": the boot module's answer, shown next to the facts.
async function explainProfile(id) {
  const dd = [...$('facts').querySelectorAll('dt')].find((dt) => dt.textContent === 'Profile')?.nextElementSibling;
  if (!dd) return;
  try {
    const e = await api('GET', `/api/v1/machines/${encodeURIComponent(id)}/profile`);
    dd.textContent = `${e.profile ?? 'none'} — ${e.reason}${e.profile && !e.profileExists ? ' (no such profile!)' : ''}`;
  } catch (err) {
    dd.textContent = err.message;
  }
}

function head(m) {
  $('m-title').textContent = m.hostname || m.id;
  $('m-sub').replaceChildren(badge(m), ` ${m.ip ?? 'no IP yet'} · ${m.macs.join(' ')} · profile ${m.profile ?? 'none'} · last seen ${when(m.lastSeen)}`);
  $('accept').hidden = !canOperate() || m.acceptance === 'accepted';
  $('reprovision').hidden = !canOperate();
  $('reprovision').disabled = m.reprovision;
  if (m.state === 'ready') renderStages(['talos.joined']);
}

async function refreshMachineHead() {
  try {
    const { machine } = await api('GET', `/api/v1/machines/${encodeURIComponent(current)}`);
    head(machine);
  } catch {}
}

const reached = new Set();

function renderStages(kinds) {
  for (const k of kinds) for (const [name, re] of STAGES) if (re.test(k)) reached.add(name);
  $('stages').replaceChildren(...STAGES.map(([name]) => el('li', { class: reached.has(name) ? 'done' : '', text: name })));
}

function addEvent(e, live = false) {
  const tr = el('tr', { class: `${live ? 'new' : ''} ${TROUBLE.test(e.kind) ? 'trouble' : ''}` }, el('td', { text: e.at?.slice(11, 23) ?? '', title: e.at ?? '' }), el('td', { text: e.source }), el('td', { class: 'mono', text: e.kind }), el('td', { text: e.message }));
  $('events').append(tr);
  renderStages([e.kind]);
}

// ---- routing ----

function route() {
  if (!session.csrf) return showLogin();
  const m = /^#\/machines\/(.+)$/.exec(location.hash);
  if (m) {
    reached.clear();
    show('machine-view');
    loadMachine(decodeURIComponent(m[1]));
  } else {
    current = null;
    show('list-view');
    loadList();
  }
}

function init() {
  const stateSel = $('f-state');
  for (const s of STATES) stateSel.append(el('option', { value: s, text: s }));
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    list.filters = readFilters();
    list.offset = 0;
    loadList();
  });
  $('prev').addEventListener('click', () => {
    list.offset = Math.max(0, list.offset - PAGE);
    loadList();
  });
  $('next').addEventListener('click', () => {
    list.offset += PAGE;
    loadList();
  });
  $('accept').addEventListener('click', () => act(current, 'accept').then(refreshMachineHead, (err) => ($('m-error').textContent = err.message)));
  $('reprovision').addEventListener('click', () => act(current, 'reprovision').then(refreshMachineHead, (err) => ($('m-error').textContent = err.message)));
  window.addEventListener('hashchange', route);
  api('GET', '/api/v1/session').then(started, () => {});
}

init();
