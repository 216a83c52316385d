// The restore portal in a real browser: Debian's chromium driven by Playwright against the real
// emrest binary, started here on loopback with its own data folder and the demo estate. The
// browser talks HTTPS (self-signed, as the README's first command serves it); the test's own
// checks go through the CLI (disk hashes, accounts) and the plain-HTTP API listener.
//
// Run: npm ci && npm test (scripts/test does both). EMREST_BIN names the binary (default
// $CARGO_TARGET_DIR/debug/emrest); CHROMIUM the browser (default /usr/bin/chromium).
// Screenshots of every page go to $CARGO_TARGET_DIR/browser-screenshots/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import AxeBuilder from '@axe-core/playwright';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TARGET = process.env.CARGO_TARGET_DIR || path.join(REPO, 'target');
const BIN = process.env.EMREST_BIN || path.join(TARGET, 'debug', 'emrest');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(TARGET, 'browser-screenshots');
const ADMIN_PASSWORD = 'browser-tests-Pa55';
const OPERATOR = 'db.operator';
const OPERATOR_PASSWORD = 'operator-Pa55';

let server;
let data;
let work;
let https;
let http;
let browser;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** An emrest verb on the test's data folder (through the running server's admin socket). */
function cli(...args) {
  const env = { ...process.env };
  delete env.EMREST_PASSWORD;
  return execFileSync(BIN, [...args, '--data', data], { encoding: 'utf8', env });
}
const vmList = () => JSON.parse(cli('vm', 'list', '--json'));
const pointList = () => JSON.parse(cli('point', 'list', '--json'));
const vmNamed = (name) => vmList().find((v) => v.name === name);
const disksOf = (x) => Object.fromEntries(x.disks.map((d) => [d.name, d.sha256]));

/** The API over plain HTTP with a session of its own (the test's view, not the browser's). */
async function apiAs(user, password) {
  const r = await fetch(`${http}/api/sessionMngr/?v=latest`, {
    method: 'POST',
    headers: { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
  });
  assert.equal(r.status, 201, `logon of ${user}`);
  const token = r.headers.get('x-restsvcsessionid');
  return async (method, p) => {
    const a = await fetch(`${http}/api${p}`, {
      method,
      headers: { Accept: 'application/json', 'X-RestSvcSessionId': token },
    });
    return { status: a.status, json: a.status === 204 ? null : await a.json() };
  };
}

async function waitFor(what, fn, limitMs = 120000) {
  const deadline = Date.now() + limitMs; // a hang guard, not a timing assertion
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  assert.ok(fs.existsSync(BIN), `${BIN} not found: run cargo build -p emrest-cli, or set EMREST_BIN`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} not found: apt-get install chromium (scripts/test does)`);
  fs.mkdirSync(SHOTS, { recursive: true });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'emrest-browser-'));
  data = path.join(work, 'data');
  const [hp, sp] = [await freePort(), await freePort()];
  http = `http://127.0.0.1:${hp}`;
  https = `https://127.0.0.1:${sp}`;
  const log = fs.openSync(path.join(work, 'server.log'), 'w');
  server = spawn(BIN, ['serve', '--data', data, '--demo', '--disk-size', '4M',
    '--http', `127.0.0.1:${hp}`, '--https', `127.0.0.1:${sp}`], {
    env: { ...process.env, EMREST_ADMIN_PASSWORD: ADMIN_PASSWORD },
    stdio: ['ignore', log, log],
  });
  await waitFor('emrest serve to answer', async () => {
    if (server.exitCode !== null) throw new Error(`emrest serve exited: ${fs.readFileSync(path.join(work, 'server.log'), 'utf8')}`);
    try { return (await fetch(`${http}/api`)).status === 200; } catch (_) { return false; }
  });
  // A VM Restore Operator whose scope is one VM, made with the CLI as an operator would.
  cli('user', 'add', OPERATOR, '--role', 'VmRestoreOperator', '--scope', vmNamed('db01').hierarchy_obj_ref,
    '--password', OPERATOR_PASSWORD);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Without the background-networking flags the closed network refuses Chromium's own
    // connections, many at a time (RESEARCH.md, "Browser tests").
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  if (work && !process.env.EMREST_KEEP) fs.rmSync(work, { recursive: true, force: true });
});

async function newPage() {
  // A fresh context is a fresh user-data directory's worth of state: no cookie carried over.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 40[0-9]/.test(m.text())) problems.push(`console: ${m.text()}`); });
  page.on('dialog', (d) => problems.push(`unexpected browser dialog: ${d.message()}`));
  return { context, page, problems };
}

/** axe-core on the page as it is now: no serious or critical violation. */
async function accessible(page, name) {
  const r = await new AxeBuilder({ page }).analyze();
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), [],
    `accessibility violations on ${name}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function logOn(page, user, password) {
  await page.goto(`${https}/`);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log on' }).click();
  await page.getByRole('heading', { name: 'Virtual machines' }).waitFor();
}

async function vmNames(page) {
  await page.locator('#vm-table tbody tr').first().waitFor();
  return page.locator('#vm-table tbody th[scope=row]').allTextContents();
}

test('a wrong password is refused with the API\'s message, and no browser dialog', async () => {
  const { context, page, problems } = await newPage();
  await page.goto(`${https}/`);
  await page.getByRole('heading', { name: 'Log on' }).waitFor();
  await accessible(page, 'the logon page');
  await shot(page, 'logon');
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Log on' }).click();
  await assert.doesNotReject(page.getByRole('alert').filter({ hasText: 'Invalid user name or password.' }).waitFor());
  assert.deepEqual(problems, []);
  await context.close();
});

test('the administrator sees every VM, searches them, and logs on with a strict session cookie', async () => {
  const { context, page, problems } = await newPage();
  await logOn(page, 'admin', ADMIN_PASSWORD);
  const cookie = (await context.cookies()).find((c) => c.name === 'X-RestSvcSessionId');
  assert.ok(cookie, 'the logon set the session cookie');
  assert.equal(cookie.httpOnly, true, 'HttpOnly');
  assert.equal(cookie.secure, true, 'Secure over HTTPS');
  assert.equal(cookie.sameSite, 'Strict', 'SameSite=Strict');
  assert.deepEqual((await vmNames(page)).sort(), ['app01', 'db01', 'file01', 'tenant-db', 'tenant-web', 'web01']);
  // Platform, host, power state and last restore point, as the inventory and catalog say.
  const web = page.locator('#vm-table tbody tr', { has: page.getByRole('link', { name: 'web01', exact: true }) });
  const cells = await web.locator('td').allTextContents();
  assert.equal(cells[0], 'VMware');
  assert.equal(cells[1], 'vcenter01.lab.local');
  assert.equal(cells[2], vmNamed('web01').power_state === 'PoweredOn' ? 'Powered on' : 'Powered off');
  assert.match(cells[3], /Increment \(2 in all\)/);
  await accessible(page, 'the VM list');
  await shot(page, 'vms');
  await page.getByLabel('Search VMs').fill('tenant');
  assert.deepEqual(await page.locator('#vm-table tbody th[scope=row]').allTextContents(), ['tenant-db', 'tenant-web']);
  await page.getByLabel('Search VMs').fill('hyperv01');
  assert.deepEqual(await page.locator('#vm-table tbody th[scope=row]').allTextContents(), ['app01', 'file01']);
  assert.deepEqual(problems, []);
  await context.close();
});

test('the scoped operator sees only its VM, restores it from the page, and the disks equal the point', async () => {
  const { context, page, problems } = await newPage();
  await logOn(page, OPERATOR, OPERATOR_PASSWORD);
  assert.deepEqual(await vmNames(page), ['db01']);
  // Administrator pages are not offered to an operator: the API refuses them.
  for (const name of ['Jobs', 'Backup sessions', 'Accounts', 'Repository']) {
    assert.equal(await page.getByRole('link', { name, exact: true }).count(), 0, `${name} is not offered`);
  }
  await page.getByRole('link', { name: 'db01', exact: true }).click();
  await page.getByRole('heading', { name: 'Restore points of db01' }).waitFor();
  // The timeline: newest first, full and increment told apart.
  const items = page.locator('ol.timeline > li');
  assert.equal(await items.count(), 2);
  const times = await items.locator('time').evaluateAll((ts) => ts.map((t) => t.getAttribute('datetime')));
  assert.ok(times[0] > times[1], `newest first: ${times}`);
  assert.match(await items.nth(0).textContent(), /Increment.*Newest/);
  assert.match(await items.nth(1).textContent(), /Full/);
  await accessible(page, 'the restore point timeline');
  await shot(page, 'timeline');

  const points = pointList().filter((p) => p.vm_name === 'db01').sort((a, b) => b.creation_time.localeCompare(a.creation_time));
  const older = points[1];
  const before = disksOf(vmNamed('db01'));
  assert.notDeepEqual(before, disksOf(older), 'the older point differs from the disks now, so a restore shows');

  // The refusal is the API's own message, and nothing is restored.
  await items.nth(1).getByRole('button', { name: /^Restore db01 to / }).click();
  const dialog = page.getByRole('dialog', { name: 'Restore db01' });
  await dialog.waitFor();
  // A VMware VM's dialog has no Cloud Director fields.
  assert.equal(await dialog.getByLabel('New name').isVisible(), false, 'no new name for a VMware VM');
  assert.equal(await dialog.getByLabel('Datastore').isVisible(), false, 'no datastore for a VMware VM');
  await accessible(page, 'the restore dialog');
  await shot(page, 'restore-dialog');
  await dialog.getByLabel('Quick rollback').check();
  await dialog.getByLabel('Keep original VM').check();
  await dialog.getByRole('button', { name: 'Start restore' }).click();
  await dialog.getByRole('alert').filter({ hasText: 'QuickRollback must be false when KeepOriginalVM is true' }).waitFor();
  const operatorApi = await apiAs(OPERATOR, OPERATOR_PASSWORD);
  assert.deepEqual((await operatorApi('GET', '/restoreSessions')).json.Refs ?? [], [], 'the refused restore recorded nothing');

  // The restore itself: a full restore over the VM, powered on after it.
  await dialog.getByLabel('Quick rollback').uncheck();
  await dialog.getByLabel('Keep original VM').uncheck();
  await dialog.getByLabel('Power on after restore').check();
  await dialog.getByRole('button', { name: 'Start restore' }).click();
  await page.getByRole('heading', { name: 'Restores' }).waitFor();
  const history = page.getByRole('table', { name: 'History' });
  await history.getByText('Success').waitFor({ timeout: 120000 });
  await accessible(page, 'the restores page');
  await shot(page, 'restores');
  await history.getByRole('link', { name: 'db01' }).first().click();
  await page.getByRole('heading', { name: 'Restore of db01' }).waitFor();
  assert.equal(await page.locator('#restore-state').textContent(), 'Stopped');
  assert.equal(await page.locator('#restore-result').textContent(), 'Success');
  assert.match(await page.locator('#restore-bytes').textContent(), /\(\d+ bytes\)/);
  assert.match(await page.getByLabel('Restore log').textContent(), /Restore completed/);
  await accessible(page, 'a restore\'s page');
  await shot(page, 'restore');

  // The disks now equal the point, byte for byte (SHA-256 from the CLI).
  const after = vmNamed('db01');
  assert.deepEqual(disksOf(after), disksOf(older));
  assert.equal(after.power_state, 'PoweredOn');
  assert.deepEqual(problems, []);
  await context.close();
});

test('a forged restore of another VM by the operator is refused 403 and restores nothing', async () => {
  const { context, page, problems } = await newPage();
  await logOn(page, OPERATOR, OPERATOR_PASSWORD);
  const web = pointList().find((p) => p.vm_name === 'web01');
  const before = disksOf(vmNamed('web01'));
  const admin = await apiAs('admin', ADMIN_PASSWORD);
  const sessions = (await admin('GET', '/restoreSessions')).json.Refs.length;
  // The page's own origin and cookie, as a tampered script would send it.
  const answer = await page.evaluate(async (id) => {
    const r = await fetch(`/api/vmRestorePoints/${id}?action=restore`, {
      method: 'POST',
      headers: { Accept: 'application/json', 'Content-Type': 'application/json', 'X-EMRest-Client': 'portal' },
      body: JSON.stringify({ VmRestoreSpec: { PowerOnAfterRestore: false, QuickRollback: false } }),
    });
    return { status: r.status, body: await r.json() };
  }, web.id);
  assert.equal(answer.status, 403, JSON.stringify(answer.body));
  assert.match(answer.body.Message, /restore scope/);
  assert.equal((await admin('GET', '/restoreSessions')).json.Refs.length, sessions, 'no restore session');
  assert.deepEqual(disksOf(vmNamed('web01')), before, 'web01 untouched');
  assert.deepEqual(problems.filter((p) => !p.includes('403')), []);
  await context.close();
});

test('logging off ends the session: the API refuses the old cookie', async () => {
  const { context, page, problems } = await newPage();
  await logOn(page, OPERATOR, OPERATOR_PASSWORD);
  const cookie = (await context.cookies()).find((c) => c.name === 'X-RestSvcSessionId');
  const withCookie = () => fetch(`${http}/api/logonSessions`, { headers: { Cookie: `X-RestSvcSessionId=${cookie.value}` } });
  assert.equal((await withCookie()).status, 200, 'the cookie works while logged on');
  await page.getByRole('button', { name: 'Log off' }).click();
  await page.getByRole('heading', { name: 'Log on' }).waitFor();
  assert.equal((await withCookie()).status, 401, 'the old cookie is refused after logoff');
  // A reload shows the logon page, not the portal.
  await page.reload();
  await page.getByRole('heading', { name: 'Log on' }).waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});

test('the administrator pages: jobs with a Start button, sessions with their VMs, accounts, repository growth', async () => {
  const { context, page, problems } = await newPage();
  await logOn(page, 'admin', ADMIN_PASSWORD);

  await page.getByRole('link', { name: 'Jobs', exact: true }).click();
  const jobs = page.getByRole('table', { name: 'Backup jobs' });
  await jobs.waitFor();
  assert.deepEqual((await jobs.locator('tbody th[scope=row]').allTextContents()).sort(),
    ['Backup Job hyperv01', 'Backup Job vcd01', 'Backup Job vcenter01']);
  assert.match(await jobs.locator('tbody tr').first().textContent(), /Success/, 'the last run is shown');
  await accessible(page, 'the jobs page');
  await shot(page, 'jobs');
  const admin = await apiAs('admin', ADMIN_PASSWORD);
  const sessionsBefore = (await admin('GET', '/backupSessions')).json.Refs.length;
  await page.getByRole('button', { name: 'Start Backup Job vcenter01' }).click();
  await jobs.getByText('Started').waitFor();
  await waitFor('the started job to finish', async () => {
    const s = (await admin('GET', '/backupSessions?format=Entity')).json.BackupJobSessions;
    return s.length === sessionsBefore + 1 && s.every((x) => x.State === 'Stopped');
  });

  await page.getByRole('link', { name: 'Backup sessions', exact: true }).click();
  await page.getByRole('heading', { name: 'Backup sessions' }).waitFor();
  const sessions = page.locator('ul.sessions > li');
  assert.equal(await sessions.count(), sessionsBefore + 1, 'the run started from the page is listed');
  const newest = sessions.first();
  assert.match(await newest.locator('summary').textContent(), /Backup Job vcenter01/);
  await newest.locator('summary').focus();
  await page.keyboard.press('Enter'); // keyboard: a details element opens with Enter
  const tasks = newest.getByRole('table');
  await tasks.waitFor();
  assert.deepEqual((await tasks.locator('tbody th[scope=row]').allTextContents()).sort(), ['db01', 'web01']);
  await accessible(page, 'the backup sessions page');
  await shot(page, 'sessions');

  await page.getByRole('link', { name: 'Accounts', exact: true }).click();
  const accounts = page.getByRole('table', { name: /Accounts/ });
  await accounts.waitFor();
  const op = accounts.locator('tbody tr', { has: page.getByRole('rowheader', { name: OPERATOR }) });
  assert.match(await op.textContent(), /VM Restore Operator/);
  // Its scope: db01's VM object (named by its object ref, as `emrest user add --scope` names it).
  const db01Ref = vmNamed('db01').hierarchy_obj_ref.split('.').pop();
  assert.match(await op.textContent(), new RegExp(`Vm ${db01Ref} \\(vcenter01\\.lab\\.local\\)`));
  await accessible(page, 'the accounts page');
  await shot(page, 'accounts');

  await page.getByRole('link', { name: 'Repository', exact: true }).click();
  const chart = page.getByRole('img', { name: /Stored bytes grew/ });
  await chart.waitFor();
  // One point on the chart per backup file the repository holds.
  const files = (await admin('GET', '/backupFiles')).json.Refs.length;
  assert.equal(await chart.locator('circle').count(), files);
  await accessible(page, 'the repository page');
  await shot(page, 'repository');
  assert.deepEqual(problems, []);
  await context.close();
});

test('a Cloud Director VM is restored as a new VM on a datastore and storage profile from the lookup service', async () => {
  const { context, page, problems } = await newPage();
  await logOn(page, 'admin', ADMIN_PASSWORD);
  await page.getByRole('link', { name: 'tenant-web', exact: true }).click();
  await page.getByRole('heading', { name: 'Restore points of tenant-web' }).waitFor();
  const newest = pointList().filter((p) => p.vm_name === 'tenant-web').sort((a, b) => b.creation_time.localeCompare(a.creation_time))[0];
  await page.locator('ol.timeline > li').first().getByRole('button', { name: /^Restore tenant-web to / }).click();
  const dialog = page.getByRole('dialog', { name: 'Restore tenant-web' });
  await dialog.getByLabel('New name').fill('tenant-web-copy');
  const datastores = dialog.getByLabel('Datastore');
  await datastores.locator('option', { hasText: 'datastore2' }).waitFor({ state: 'attached' });
  await datastores.selectOption({ label: 'datastore2' });
  await dialog.getByLabel('Storage profile').selectOption({ label: 'Silver' });
  await accessible(page, 'the Cloud Director restore dialog');
  await shot(page, 'restore-dialog-vcloud');
  await dialog.getByRole('button', { name: 'Start restore' }).click();
  const history = page.getByRole('table', { name: 'History' });
  await history.locator('tr', { hasText: 'tenant-web' }).filter({ hasText: 'Success' }).first().waitFor({ timeout: 120000 });
  const copy = await waitFor('the new VM in the inventory', async () => vmNamed('tenant-web-copy'));
  assert.deepEqual(disksOf(copy), disksOf(newest));
  assert.ok(vmNamed('tenant-web'), 'the original stays');
  assert.deepEqual(problems, []);
  await context.close();
});
