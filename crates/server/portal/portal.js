// emrest restore portal: a client of the REST API at /api, in JSON, authenticated by the API's
// session cookie (HttpOnly: this script never sees the token). Every page is built with DOM
// calls and textContent, never from HTML strings, so names from the catalog cannot inject
// markup. The API decides who may see and do what; the page only shows what it is given.
'use strict';

const state = {
  user: null,
  sessionId: null,
  can: { jobs: false, accounts: false, repositories: false },
  timer: null,
  vms: [],
};

// ---------------------------------------------------------------- helpers

/** An element with attributes (`on*` functions become listeners) and children. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');
}

function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** The bare UUID of a `urn:veeam:<Kind>:<uuid>` UID. */
function bareId(uid) {
  const i = (uid || '').lastIndexOf(':');
  return i < 0 ? uid : uid.slice(i + 1);
}

/** The hierarchy root's UUID in a HierarchyObjRef `urn:<Platform>:<Type>:<root>.<ref>`. */
function rootOf(objRef) {
  const parts = (objRef || '').split(':');
  const tail = parts.slice(3).join(':');
  return tail.slice(0, 36);
}

function announce(text) {
  const el = document.getElementById('announce');
  el.textContent = '';
  window.setTimeout(() => { el.textContent = text; }, 50);
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** One API request in JSON. A 401 outside logon means the session is gone: back to logon. */
async function api(method, path, body, extraHeaders) {
  // X-EMRest-Client: the server then leaves the Basic challenge out of a 401, which would open
  // the browser's own password dialog over this page (portal/mod.rs).
  const headers = { Accept: 'application/json', 'X-EMRest-Client': 'portal', ...(extraHeaders || {}) };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(`/api${path}`, init);
  const text = await r.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch (_) { data = text; }
  }
  if (!r.ok) {
    const message = (data && typeof data === 'object' && data.Message) ? data.Message : `The server answered ${r.status}`;
    if (r.status === 401 && !path.startsWith('/sessionMngr')) {
      showLogon('Your session has ended. Log on again.');
    }
    throw new ApiError(r.status, message);
  }
  return data;
}

function table(caption, headers, rows, opts) {
  return h('table', { class: (opts && opts.class) || null },
    h('caption', { text: caption }),
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: headers.length, class: 'empty', text: (opts && opts.empty) || 'Nothing to show.' }))));
}

function badge(text, kind) {
  return h('span', { class: `badge ${kind || ''}`.trim(), text });
}

function resultBadge(result, st) {
  if (st && st !== 'Stopped' && st !== 'Completed' && st !== 'Finished') return badge(st, 'running');
  const kind = { Success: 'ok', Warning: 'warn', Failed: 'bad' }[result] || '';
  return badge(result || st || '—', kind);
}

function view(...children) {
  const v = document.getElementById('view');
  v.replaceChildren(...children.flat());
}

function errorBox(e) {
  return h('p', { class: 'error', role: 'alert', text: e.message || String(e) });
}

function stopPolling() {
  if (state.timer) window.clearTimeout(state.timer);
  state.timer = null;
}

// ---------------------------------------------------------------- logon and logoff

function utf8Base64(text) {
  const bytesArr = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytesArr) bin += String.fromCharCode(b);
  return window.btoa(bin);
}

function showLogon(message) {
  stopPolling();
  state.user = null;
  state.sessionId = null;
  document.getElementById('nav').hidden = true;
  document.getElementById('logoff').hidden = true;
  document.getElementById('who').textContent = '';
  document.getElementById('view').replaceChildren();
  const dlg = document.getElementById('restore-dialog');
  if (dlg.open) dlg.close();
  document.getElementById('logon-view').hidden = false;
  document.getElementById('logon-error').textContent = message || '';
  document.title = 'Log on · emrest restore portal';
  document.getElementById('logon-user').focus();
}

async function logon(event) {
  event.preventDefault();
  const user = document.getElementById('logon-user').value;
  const password = document.getElementById('logon-password').value;
  const err = document.getElementById('logon-error');
  err.textContent = '';
  if (!user || !password) {
    err.textContent = 'Enter a user name and a password.';
    return;
  }
  try {
    // The API's own logon: the same lockout, throttling and audit as any client.
    const s = await api('POST', '/sessionMngr/?v=latest', undefined, {
      Authorization: `Basic ${utf8Base64(`${user}:${password}`)}`,
    });
    document.getElementById('logon-password').value = '';
    await enter(s);
  } catch (e) {
    err.textContent = e.message;
  }
}

async function logoff() {
  try {
    if (state.sessionId) await api('DELETE', `/logonSessions/${encodeURIComponent(state.sessionId)}`);
  } catch (e) {
    if (e.status !== 401) {
      announce(e.message);
      return;
    }
  }
  window.location.hash = '';
  showLogon('You are logged off.');
}

/** After logon, or on load with a live cookie: who we are and which pages the API grants. */
async function enter(session) {
  state.user = session.UserName;
  state.sessionId = session.SessionId;
  const probe = async (path) => {
    try { await api('GET', path); return true; } catch (_) { return false; }
  };
  const [jobs, accounts, repositories] = await Promise.all([
    probe('/jobs'), probe('/security'), probe('/repositories'),
  ]);
  state.can = { jobs, accounts, repositories };
  for (const li of document.querySelectorAll('#nav [data-needs]')) {
    li.hidden = !state.can[li.dataset.needs];
  }
  document.getElementById('logon-view').hidden = true;
  document.getElementById('nav').hidden = false;
  document.getElementById('logoff').hidden = false;
  document.getElementById('who').textContent = `Logged on as ${state.user}`;
  if (!window.location.hash || window.location.hash === '#') window.location.hash = '#/vms';
  else route();
}

// ---------------------------------------------------------------- routing

const routes = [
  [/^#\/vms$/, pageVms],
  [/^#\/vms\/(.+)$/, pageVm],
  [/^#\/restores$/, pageRestores],
  [/^#\/restores\/(.+)$/, pageRestore],
  [/^#\/jobs$/, pageJobs],
  [/^#\/sessions$/, pageSessions],
  [/^#\/accounts$/, pageAccounts],
  [/^#\/repository$/, pageRepository],
];

function route() {
  if (!state.user) return;
  stopPolling();
  const hash = window.location.hash || '#/vms';
  for (const a of document.querySelectorAll('#nav a')) {
    if (hash === a.getAttribute('href') || hash.startsWith(`${a.getAttribute('href')}/`)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  for (const [re, page] of routes) {
    const m = hash.match(re);
    if (m) {
      page(...m.slice(1).map(decodeURIComponent)).catch((e) => view(errorBox(e)));
      return;
    }
  }
  window.location.hash = '#/vms';
}

function heading(text) {
  document.title = `${text} · emrest restore portal`;
  return h('h1', { text });
}

// ---------------------------------------------------------------- virtual machines

async function pageVms() {
  const data = await api('GET', '/emrest/vms');
  state.vms = data.RestorableVms || [];
  const search = h('input', {
    type: 'search', id: 'vm-search', 'aria-controls': 'vm-table', placeholder: 'Name, platform or host',
  });
  const count = h('p', { id: 'vm-count', 'aria-live': 'polite' });
  const body = h('tbody');
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const shown = state.vms.filter((v) => !q || [v.Name, v.Platform, v.HierarchyRootName || '']
      .some((f) => f.toLowerCase().includes(q)));
    body.replaceChildren(...(shown.length ? shown.map(vmRow) : [h('tr', {}, h('td', { colspan: 5, class: 'empty', text: 'No VM matches.' }))]));
    count.textContent = `${shown.length} of ${state.vms.length} VMs`;
  };
  search.addEventListener('input', draw);
  draw();
  view(
    heading('Virtual machines'),
    h('p', { class: 'lead', text: 'The VMs you may restore. Pick one to see its restore points.' }),
    h('div', { class: 'search' }, h('label', { for: 'vm-search', text: 'Search VMs' }), search),
    count,
    h('table', { id: 'vm-table' },
      h('caption', { class: 'visually-hidden', text: 'VMs you may restore' }),
      h('thead', {}, h('tr', {}, ['Name', 'Platform', 'Host', 'Power state', 'Last restore point']
        .map((t) => h('th', { scope: 'col', text: t })))),
      body),
  );
}

function vmRow(v) {
  const power = v.PowerState === 'PoweredOn' ? badge('Powered on', 'ok')
    : v.PowerState === 'PoweredOff' ? badge('Powered off', '') : badge('Not in inventory', 'warn');
  return h('tr', {},
    h('th', { scope: 'row' }, h('a', { href: `#/vms/${encodeURIComponent(v.HierarchyObjRef)}`, text: v.Name })),
    h('td', { text: v.Platform }),
    h('td', { text: v.HierarchyRootName || '—' }),
    h('td', {}, power),
    h('td', {}, when(v.LastRestorePointTimeUTC), ' ', pointBadge(v.LastRestorePointType),
      h('span', { class: 'muted', text: ` (${v.RestorePointCount} in all)` })));
}

function pointBadge(type) {
  return type === 'Full' ? badge('Full', 'full') : badge('Increment', 'inc');
}

async function pageVm(objRef) {
  if (!state.vms.length) state.vms = (await api('GET', '/emrest/vms')).RestorableVms || [];
  const vm = state.vms.find((v) => v.HierarchyObjRef === objRef);
  const filter = `HierarchyObjRef=="${objRef.replace(/"/g, '""')}"`;
  const q = new URLSearchParams({
    type: 'VmRestorePoint', format: 'Entities', filter, sortDesc: 'CreationTime', pageSize: '1000',
  });
  const data = await api('GET', `/query?${q}`);
  const points = (((data.Entities || {}).VmRestorePoints || {}).VmRestorePoints) || [];
  const name = vm ? vm.Name : (points[0] && points[0].VmName) || objRef;
  const items = points.map((p, i) => h('li', { class: p.PointType === 'Full' ? 'full' : 'inc' },
    h('span', { class: 'dot', 'aria-hidden': 'true' }),
    h('div', { class: 'point' },
      h('p', { class: 'point-time' }, h('time', { datetime: p.CreationTimeUTC, text: when(p.CreationTimeUTC) }),
        ' ', pointBadge(p.PointType), i === 0 ? badge('Newest', 'new') : null),
      h('button', {
        type: 'button',
        class: 'restore',
        'aria-label': `Restore ${name} to ${when(p.CreationTimeUTC)}`,
        onclick: () => openRestore(vm || { Name: name, HierarchyObjRef: objRef, Platform: objRef.split(':')[1] }, p),
        text: 'Restore…',
      }))));
  view(
    h('p', { class: 'crumbs' }, h('a', { href: '#/vms', text: 'Virtual machines' }), ' / ', name),
    heading(`Restore points of ${name}`),
    vm ? h('p', { class: 'lead' }, `${vm.Platform} on ${vm.HierarchyRootName || '—'}; `,
      vm.PowerState === 'PoweredOn' ? 'powered on' : vm.PowerState === 'PoweredOff' ? 'powered off' : 'not in the inventory',
      '. Newest first; a full point holds every block, an increment the blocks changed since the point before.') : null,
    points.length
      ? h('ol', { class: 'timeline', 'aria-label': `Restore points of ${name}, newest first` }, items)
      : h('p', { text: 'This VM has no restore points you may see.' }),
  );
}

// ---------------------------------------------------------------- the restore dialog

let restoreTarget = null;

async function openRestore(vm, point) {
  restoreTarget = { vm, point };
  const dlg = document.getElementById('restore-dialog');
  document.getElementById('restore-title').textContent = `Restore ${vm.Name}`;
  document.getElementById('restore-point').textContent = `To the ${point.PointType === 'Full' ? 'full' : 'incremental'} restore point of ${when(point.CreationTimeUTC)}.`;
  document.getElementById('restore-error').textContent = '';
  for (const id of ['opt-quick', 'opt-keep', 'opt-power']) document.getElementById(id).checked = false;
  const cloud = vm.Platform === 'vCloud';
  const fields = document.getElementById('vcloud-fields');
  fields.hidden = !cloud;
  document.getElementById('opt-name').value = '';
  const ds = document.getElementById('opt-datastore');
  const sp = document.getElementById('opt-profile');
  ds.replaceChildren();
  sp.replaceChildren();
  dlg.showModal();
  document.getElementById('opt-quick').focus();
  if (cloud) {
    const host = `urn:veeam:HierarchyRoot:${rootOf(vm.HierarchyObjRef)}`;
    const look = async (type) => {
      const q = new URLSearchParams({ host, type, name: '*' });
      return ((await api('GET', `/lookup?${q}`)).HierarchyItems) || [];
    };
    try {
      const [datastores, profiles] = await Promise.all([look('Datastore'), look('OrgVdcStorageProfile')]);
      ds.replaceChildren(h('option', { value: '', text: "The original VM's datastore" }),
        ...datastores.map((d) => h('option', { value: d.ObjectRef, text: d.ObjectName })));
      sp.replaceChildren(h('option', { value: '', text: "The original VM's storage profile" }),
        ...profiles.map((d) => h('option', { value: d.ObjectRef, text: d.ObjectName })));
    } catch (e) {
      document.getElementById('restore-error').textContent = e.message;
    }
  }
}

function restoreSpec() {
  const { vm, point } = restoreTarget;
  const spec = {
    PowerOnAfterRestore: document.getElementById('opt-power').checked,
    QuickRollback: document.getElementById('opt-quick').checked,
    KeepOriginalVM: document.getElementById('opt-keep').checked,
  };
  if (vm.Platform === 'vCloud') {
    const params = { VmRestorePointUid: point.UID };
    const name = document.getElementById('opt-name').value.trim();
    const ds = document.getElementById('opt-datastore').value;
    const sp = document.getElementById('opt-profile').value;
    if (name) params.VmNewName = name;
    if (ds) params.DatastoreRef = ds;
    if (sp) params.OrgVdcStorageProfileRef = sp;
    return {
      VmRestoreSpec: {
        PowerOnAfterRestore: spec.PowerOnAfterRestore,
        HierarchyRootUid: `urn:veeam:HierarchyRoot:${rootOf(vm.HierarchyObjRef)}`,
        QuickRollback: spec.QuickRollback,
        KeepOriginalVM: spec.KeepOriginalVM,
        VmRestoreParameters: params,
      },
    };
  }
  return { VmRestoreSpec: spec };
}

async function startRestore(event) {
  event.preventDefault();
  if (!restoreTarget) return;
  const err = document.getElementById('restore-error');
  const button = document.getElementById('restore-start');
  err.textContent = '';
  button.disabled = true;
  try {
    const id = bareId(restoreTarget.point.UID);
    await api('POST', `/vmRestorePoints/${encodeURIComponent(id)}?action=restore`, restoreSpec());
    document.getElementById('restore-dialog').close();
    announce(`Restore of ${restoreTarget.vm.Name} started.`);
    window.location.hash = '#/restores';
  } catch (e) {
    // The API's own message: KeepOriginalVM with QuickRollback, a busy VM, a damaged point…
    err.textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- restores

const RUNNING = new Set(['Starting', 'Working', 'Resuming', 'Stopping', 'Pausing']);

async function pageRestores() {
  const data = await api('GET', '/restoreSessions?format=Entity');
  const sessions = (data.RestoreSessions || []).slice()
    .sort((a, b) => (b.CreationTimeUTC || '').localeCompare(a.CreationTimeUTC || ''));
  const running = sessions.filter((x) => RUNNING.has(x.State));
  const done = sessions.filter((x) => !RUNNING.has(x.State));
  await Promise.all(running.map(async (x) => {
    const n = bytesFromLog(await logOf(bareId(x.UID)).catch(() => ''));
    x.bytesText = n === null ? 'none written yet' : `${bytes(n)} written`;
  }));
  const progressRows = running.map((x) => h('tr', {},
    h('th', { scope: 'row' }, h('a', { href: `#/restores/${bareId(x.UID)}`, text: x.VmDisplayName })),
    h('td', { text: x.State }),
    h('td', {}, h('progress', { max: 100, value: x.Progress, 'aria-label': `Progress of the restore of ${x.VmDisplayName}` }), ` ${x.Progress}%`),
    h('td', { text: x.bytesText }),
    h('td', { text: when(x.CreationTimeUTC) })));
  const historyRows = done.map((x) => h('tr', {},
    h('th', { scope: 'row' }, h('a', { href: `#/restores/${bareId(x.UID)}`, text: x.VmDisplayName })),
    h('td', {}, resultBadge(x.Result, x.State)),
    h('td', { text: when(x.CreationTimeUTC) }),
    h('td', { text: when(x.EndTimeUTC) }),
    h('td', { text: x.FailureMessage || '' })));
  view(
    heading('Restores'),
    h('p', { class: 'lead', text: state.can.accounts ? 'Every account\'s restores (you are an administrator).' : 'Your restores.' }),
    table('Running now', ['VM', 'State', 'Progress', 'Bytes', 'Started'], progressRows, { empty: 'No restore is running.' }),
    table('History', ['VM', 'Result', 'Started', 'Ended', 'Message'], historyRows, { empty: 'No restore has finished yet.' }),
  );
  if (running.length) state.timer = window.setTimeout(() => route(), 1000);
}

/** Bytes written so far, from the restore's log (an emrest extension): the total once the
 *  restore completed, else the sum of the disks finished so far. */
function bytesFromLog(log) {
  const done = log.match(/Restore completed:[^\n]*\((\d+) bytes\)/);
  if (done) return Number(done[1]);
  let sum = null;
  for (const m of log.matchAll(/^\S+ Disk [^\n]*\((\d+) bytes\)/gm)) sum = (sum || 0) + Number(m[1]);
  return sum;
}

async function logOf(id) {
  const l = await api('GET', `/restoreSessions/${encodeURIComponent(id)}/log`);
  return typeof l === 'string' ? l : JSON.stringify(l, null, 2);
}

async function pageRestore(id) {
  const x = await api('GET', `/restoreSessions/${encodeURIComponent(id)}?format=Entity`);
  let log = '';
  try {
    log = await logOf(id);
  } catch (e) {
    log = e.message;
  }
  const running = RUNNING.has(x.State);
  const written = bytesFromLog(log);
  view(
    h('p', { class: 'crumbs' }, h('a', { href: '#/restores', text: 'Restores' }), ' / ', x.Name),
    heading(`Restore of ${x.VmDisplayName}`),
    h('dl', { class: 'facts' },
      h('dt', { text: 'State' }), h('dd', { id: 'restore-state', text: x.State }),
      h('dt', { text: 'Result' }), h('dd', { id: 'restore-result' }, resultBadge(x.Result, x.State)),
      h('dt', { text: 'Progress' }), h('dd', {}, h('progress', { max: 100, value: x.Progress, 'aria-label': 'Progress' }), ` ${x.Progress}%`),
      h('dt', { text: 'Bytes written' }), h('dd', { id: 'restore-bytes', text: written === null ? '—' : `${bytes(written)} (${written} bytes)` }),
      h('dt', { text: 'Started' }), h('dd', { text: when(x.CreationTimeUTC) }),
      h('dt', { text: 'Ended' }), h('dd', { text: when(x.EndTimeUTC) }),
      h('dt', { text: 'Restored VM' }), h('dd', { text: x.RestoredObjRef || '—' }),
      x.FailureMessage ? [h('dt', { text: 'Message' }), h('dd', { text: x.FailureMessage })] : null),
    h('h2', { text: 'Log' }),
    h('pre', { class: 'log', tabindex: 0, 'aria-label': 'Restore log', text: log || '(empty)' }),
  );
  if (running) state.timer = window.setTimeout(() => route(), 1000);
}

// ---------------------------------------------------------------- administration

async function pageJobs() {
  const [jobs, sessions] = await Promise.all([
    api('GET', '/jobs?format=Entity'), api('GET', '/backupSessions?format=Entity'),
  ]);
  const last = new Map();
  for (const x of sessions.BackupJobSessions || []) {
    const prev = last.get(x.JobUid);
    if (!prev || (x.CreationTimeUTC || '') > (prev.CreationTimeUTC || '')) last.set(x.JobUid, x);
  }
  const rows = (jobs.Jobs || []).map((j) => {
    const l = last.get(j.UID);
    const msg = h('span', { class: 'job-msg', role: 'status' });
    return h('tr', {},
      h('th', { scope: 'row', text: j.Name }),
      h('td', { text: j.Platform }),
      h('td', {}, l ? [when(l.CreationTimeUTC), ' ', resultBadge(l.Result, l.State)] : 'Never'),
      h('td', { text: j.NextRun ? when(j.NextRun) : (j.ScheduleEnabled ? '—' : 'Not scheduled') }),
      h('td', {}, h('button', {
        type: 'button',
        'aria-label': `Start ${j.Name}`,
        text: 'Start',
        onclick: async (ev) => {
          ev.target.disabled = true;
          try {
            await api('POST', `/jobs/${bareId(j.UID)}?action=start`);
            msg.textContent = 'Started';
            window.setTimeout(() => route(), 1500);
          } catch (e) {
            msg.textContent = e.message;
          } finally {
            ev.target.disabled = false;
          }
        },
      }), ' ', msg));
  });
  view(heading('Jobs'), table('Backup jobs', ['Job', 'Platform', 'Last run', 'Next run', 'Action'], rows, { empty: 'No jobs.' }));
  if ((sessions.BackupJobSessions || []).some((x) => x.State !== 'Stopped')) state.timer = window.setTimeout(() => route(), 2000);
}

async function pageSessions() {
  const data = await api('GET', '/backupSessions?format=Entity');
  const list = (data.BackupJobSessions || []).slice()
    .sort((a, b) => (b.CreationTimeUTC || '').localeCompare(a.CreationTimeUTC || ''));
  const items = list.map((x) => {
    const det = h('details', {},
      h('summary', {}, h('span', { class: 'sum-name', text: x.JobName }), ' ', when(x.CreationTimeUTC), ' ', resultBadge(x.Result, x.State)),
      h('div', { class: 'tasks', text: 'Loading…' }));
    det.addEventListener('toggle', async () => {
      if (!det.open || det.dataset.loaded) return;
      det.dataset.loaded = '1';
      const box = det.querySelector('.tasks');
      try {
        const t = await api('GET', `/backupSessions/${bareId(x.UID)}/taskSessions?format=Entity`);
        const rows = (t.BackupTaskSessions || []).map((k) => h('tr', {},
          h('th', { scope: 'row', text: k.VmDisplayName }),
          h('td', {}, resultBadge(k.Result, k.State)),
          h('td', { text: bytes(k.TotalSize) }),
          h('td', { text: when(k.CreationTimeUTC) }),
          h('td', { text: when(k.EndTimeUTC) }),
          h('td', { text: k.Reason || '' })));
        box.replaceChildren(table(`VMs of ${x.Name}`, ['VM', 'Result', 'Size', 'Started', 'Ended', 'Reason'], rows, { empty: 'No VM was processed.' }));
      } catch (e) {
        box.replaceChildren(errorBox(e));
      }
    });
    return h('li', {}, det);
  });
  view(heading('Backup sessions'),
    h('p', { class: 'lead', text: 'Newest first. Open a session to see its VMs.' }),
    items.length ? h('ul', { class: 'sessions' }, items) : h('p', { text: 'No backup session yet.' }));
}

async function pageAccounts() {
  const data = await api('GET', '/security/accounts?format=Entity');
  const accounts = data.EnterpriseAccounts || [];
  const details = await Promise.all(accounts.map(async (a) => {
    const id = bareId(a.UID);
    const [roles, scopes] = await Promise.all([
      api('GET', `/security/accounts/${id}/roles`).catch(() => ({})),
      api('GET', `/security/accounts/${id}/scopes`).catch(() => ({})),
    ]);
    return { a, roles: roles.EnterpriseAccountInRoleList || [], scopes: scopes.EnterpriseAccountHierarchyScopes || [] };
  }));
  const rows = details.map(({ a, roles, scopes }) => h('tr', {},
    h('th', { scope: 'row', text: a.Name }),
    h('td', { text: a.AccountType }),
    h('td', { text: roles.map((r) => r.RoleName).join(', ') || '—' }),
    h('td', {}, a.AllowRestoreAllVms ? 'All VMs'
      : (scopes.length ? h('ul', { class: 'plain' }, scopes.map((x) => h('li', { text: `${x.HierarchyObjectType} ${x.Name} (${x.HierarchyRootName})` }))) : 'No VM'))));
  view(heading('Accounts'), table('Accounts, their roles and restore scopes', ['Account', 'Type', 'Roles', 'May restore'], rows, { empty: 'No accounts.' }));
}

async function pageRepository() {
  const [repos, files] = await Promise.all([
    api('GET', '/repositories?format=Entity'), api('GET', '/backupFiles?format=Entity'),
  ]);
  const list = repos.Repositories || [];
  const points = (files.BackupFiles || [])
    .map((f) => ({ t: Date.parse(f.CreationTimeUtc), size: Number(f.BackupSize) || 0 }))
    .filter((p) => !Number.isNaN(p.t))
    .sort((a, b) => a.t - b.t);
  let total = 0;
  const series = points.map((p) => { total += p.size; return { t: p.t, v: total }; });
  const parts = [heading('Repository')];
  for (const r of list) {
    const used = Math.max(0, r.Capacity - r.FreeSpace);
    parts.push(h('section', { class: 'repo', 'aria-label': r.Name },
      h('h2', { text: r.Name }),
      h('p', {}, `${bytes(used)} of ${bytes(r.Capacity)} used on the repository's file system; ${bytes(r.FreeSpace)} free.`),
      capacityBar(used, r.Capacity)));
  }
  parts.push(h('h2', { text: 'Growth over time' }),
    h('p', { class: 'lead', text: 'Bytes stored by the restore points kept now, added up in the order they were made (from each backup file\'s BackupSize).' }),
    growthChart(series),
    h('details', {}, h('summary', { text: 'The numbers behind the chart' }),
      table('Stored bytes over time', ['Time', 'Stored'], series.map((p) => h('tr', {},
        h('td', { text: when(new Date(p.t).toISOString()) }), h('td', { text: bytes(p.v) }))), { empty: 'No backup files.' })));
  view(parts);
}

function capacityBar(used, capacity) {
  const frac = capacity > 0 ? Math.min(1, used / capacity) : 0;
  const w = 600;
  return s('svg', { viewBox: `0 0 ${w} 28`, class: 'capacity', role: 'img', 'aria-label': `${Math.round(frac * 100)}% of the capacity used` },
    s('rect', { x: 0, y: 4, width: w, height: 20, rx: 4, class: 'cap-free' }),
    s('rect', { x: 0, y: 4, width: Math.max(2, frac * w), height: 20, rx: 4, class: 'cap-used' }));
}

function growthChart(series) {
  const W = 720; const H = 280; const L = 70; const R = 20; const T = 20; const B = 40;
  if (!series.length) return h('p', { text: 'No backup has stored anything yet.' });
  const t0 = series[0].t; const t1 = series[series.length - 1].t;
  const vmax = series[series.length - 1].v || 1;
  const x = (t) => L + (t1 === t0 ? (W - L - R) : ((t - t0) / (t1 - t0)) * (W - L - R));
  const y = (v) => H - B - (v / vmax) * (H - T - B);
  let d = `M ${x(series[0].t)} ${y(0)}`;
  let prev = 0;
  for (const p of series) { d += ` L ${x(p.t)} ${y(prev)} L ${x(p.t)} ${y(p.v)}`; prev = p.v; }
  const area = `${d} L ${x(t1)} ${y(0)} Z`;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => s('g', {},
    s('line', { x1: L, x2: W - R, y1: y(f * vmax), y2: y(f * vmax), class: 'grid' }),
    s('text', { x: L - 6, y: y(f * vmax) + 4, 'text-anchor': 'end', class: 'tick' }, bytes(f * vmax))));
  const label = `Stored bytes grew from ${bytes(series[0].v)} on ${when(new Date(t0).toISOString())} to ${bytes(vmax)} on ${when(new Date(t1).toISOString())}`;
  return s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': label },
    s('title', {}, label),
    ticks,
    s('path', { d: area, class: 'area' }),
    s('path', { d, class: 'line' }),
    series.map((p) => s('circle', { cx: x(p.t), cy: y(p.v), r: 3, class: 'dot' })),
    s('text', { x: L, y: H - 12, class: 'tick' }, when(new Date(t0).toISOString())),
    s('text', { x: W - R, y: H - 12, 'text-anchor': 'end', class: 'tick' }, when(new Date(t1).toISOString())));
}

// ---------------------------------------------------------------- start

async function start() {
  document.getElementById('logon-form').addEventListener('submit', logon);
  document.getElementById('logoff').addEventListener('click', logoff);
  document.getElementById('restore-form').addEventListener('submit', startRestore);
  document.getElementById('restore-cancel').addEventListener('click', () => document.getElementById('restore-dialog').close());
  window.addEventListener('hashchange', route);
  try {
    // A live cookie: the caller's own sessions, its current one first (get_logonsessions.md).
    const data = await api('GET', '/logonSessions');
    const current = (data.LogonSessions || [])[0];
    if (current) await enter(current);
    else showLogon();
  } catch (_) {
    showLogon();
  }
}

document.addEventListener('DOMContentLoaded', start);
