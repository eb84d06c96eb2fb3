// The web page in a real browser: Debian's Chromium driven by playwright-core, against an in-process heph
// holding 10 000 machines.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { apiHeph, type ApiHeph } from '../helpers/api.ts';
import { REPO } from '../helpers/heph.ts';

export const ARTIFACTS = join(REPO, '.tmp/artifacts');
const XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">';

/** Debian's Chromium with a fresh profile directory (removed by the caller). */
export async function launchChromium(): Promise<{ context: BrowserContext; profile: string }> {
  const profile = mkdtempSync(join(tmpdir(), 'heph-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return { context, profile };
}

describe('web page of machine states (Chromium)', () => {
  let h: ApiHeph;
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];
  let target: string; // a machine the tests watch
  let evil: string; // the machine whose hostname is markup

  before(async () => {
    h = await apiHeph();
    const { ctx } = h.daemon;
    ctx.db.transaction(() => {
      for (let i = 0; i < 10_000; i++) {
        const mac = `02:10:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
        const { machine } = ctx.machines.resolve({ mac, hostname: `node-${String(i).padStart(5, '0')}`, ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, arch: i % 4 ? 'x86_64' : 'arm64', at: Date.now() - (10_000 - i) * 1000 });
        if (i % 7 === 0) ctx.machines.setState(machine.id, 'ready', null);
        if (i === 4243) target = machine.id;
      }
      evil = ctx.machines.resolve({ mac: '02:ee:ee:ee:ee:01', hostname: XSS, ip: '10.99.0.1', arch: 'x86_64' }).machine.id;
    })();
    ({ context, profile } = await launchChromium());
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await h?.stop();
  });

  test('login with an API token sets an HttpOnly, SameSite=Strict session and shows the table', async () => {
    await page.goto(`${h.url}/`);
    await page.locator('#login-view').waitFor();
    await page.fill('#token', 'heph_wrong');
    await page.click('#login-form button[type=submit]');
    await page.locator('#login-error').filter({ hasText: 'not valid' }).waitFor();
    await page.fill('#token', h.token('operator', 'browser-operator'));
    await page.click('#login-form button[type=submit]');
    await page.locator('#rows tr').first().waitFor();
    assert.equal(await page.locator('#rows tr').count(), 50, 'one page of 50, not 10 001 rows');
    assert.equal(await page.textContent('#count'), '10001 machines');
    assert.equal(await page.textContent('#who'), 'browser-operator (operator)');
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'heph_session')!;
    assert.ok(session, 'session cookie set');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(await page.evaluate('document.cookie'), '', 'the page script cannot read the session');
    await page.locator('#live').waitFor({ state: 'visible' });
  });

  test('paging and filtering run on the server', async () => {
    await page.click('#next');
    await page.locator('#page', { hasText: '51–100 of 10001' }).waitFor();
    await page.selectOption('#f-state', 'ready');
    await page.fill('#f-q', 'node-04');
    await page.click('#filters button[type=submit]');
    await page.locator('#count', { hasText: /^143 machines$/ }).waitFor();
    const states = await page.locator('#rows .state').allTextContents();
    assert.ok(states.length === 50 && states.every((s) => s === 'ready'));
    await page.selectOption('#f-state', '');
    await page.fill('#f-q', '02:10:00:00:10:93');
    await page.click('#filters button[type=submit]');
    await page.locator('#count', { hasText: /^1 machine$/ }).waitFor();
    assert.equal(await page.textContent('#rows tr td:nth-child(2)'), 'node-04243');
    assert.equal(await page.textContent('#rows tr td:nth-child(4)'), '10.0.16.147');
  });

  test('a new event updates the row without a reload (Server-Sent Events)', async () => {
    const { ctx } = h.daemon;
    const row = page.locator(`#rows tr[data-id="${target}"]`);
    assert.equal(await row.locator('.state').textContent(), 'discovered');
    await page.evaluate('window.__marker = 42');
    ctx.machines.setState(target, 'installing', null);
    ctx.timeline.append({ machineId: target, kind: 'talos.phase', source: 'events', message: 'installing Talos' });
    await row.locator('.state', { hasText: 'installing' }).waitFor({ timeout: 10_000 });
    assert.equal(await page.evaluate('window.__marker'), 42, 'same page: no reload happened');
  });

  test('a hostname made of markup renders as inert text', async () => {
    await page.fill('#f-q', '10.99.0.1');
    await page.click('#filters button[type=submit]');
    await page.locator('#count', { hasText: /^1 machine$/ }).waitFor();
    assert.equal(await page.textContent('#rows tr td:nth-child(2)'), XSS);
    assert.equal(await page.locator('#rows img, #rows script').count(), 0);
    await page.click('#rows tr td:nth-child(2) a');
    await page.locator('#m-title', { hasText: 'window.__xss' }).waitFor();
    assert.equal(await page.textContent('#m-title'), XSS);
    assert.equal(await page.locator('main img, main script').count(), 0);
    assert.equal(await page.evaluate('window.__xss'), undefined);
    assert.equal(page.url(), `${h.url}/#/machines/${evil}`);
  });

  test('the CSP lets no inline script run', async () => {
    const res = await page.request.get(`${h.url}/`);
    const csp = res.headers()['content-security-policy']!;
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    // Page-side code as a string: this file is type-checked without the DOM library.
    const ran = (await page.evaluate(`(async () => {
      const violations = [];
      document.addEventListener('securitypolicyviolation', (e) => violations.push(e.violatedDirective));
      const s = document.createElement('script');
      s.textContent = 'window.__inline = 1';
      document.body.append(s);
      const d = document.createElement('div');
      d.innerHTML = '<img src="/ui/none.svg" onerror="window.__handler = 1">';
      document.body.append(d);
      await new Promise((r) => setTimeout(r, 500));
      s.remove();
      d.remove();
      return { inline: window.__inline, handler: window.__handler, violations };
    })()`)) as { inline?: number; handler?: number; violations: string[] };
    assert.equal(ran.inline, undefined);
    assert.equal(ran.handler, undefined);
    assert.ok(ran.violations.some((v) => v.startsWith('script-src')), `violations: ${ran.violations.join(', ')}`);
  });

  test('the machine page leads with the boot timeline, shows new events live, and accepts', async () => {
    const { ctx } = h.daemon;
    ctx.timeline.appendNow({ machineId: target, kind: 'dhcp.discover', source: 'dhcp', message: 'PXE DISCOVER (x86-64 UEFI)', ip: '10.0.16.147' });
    ctx.timeline.appendNow({ machineId: target, kind: 'tftp.done', source: 'tftp', message: 'ipxe.efi sent (1.0 MiB)' });
    ctx.timeline.appendNow({ machineId: target, kind: 'config.refused', source: 'http', message: 'config refused: token from another IP' });
    // The kernel log as the events module stores it.
    const kmsg = ctx.db.prepare('INSERT INTO kmsg (machine_id, ip, at, msg, talos_time) VALUES (?, ?, ?, ?, ?)');
    kmsg.run(target, '10.0.16.147', Date.now(), '[talos] task startAllServices (1/1): waiting for 9 services', '2026-11-22T04:00:01Z');
    kmsg.run(target, '10.0.16.147', Date.now(), '<img src=x onerror="window.__xss=3">', '2026-11-22T04:00:02Z');
    await page.goto(`${h.url}/#/machines/${target}`);
    await page.locator('#m-title', { hasText: 'node-04243' }).waitFor();
    await page.locator('#events tr', { hasText: 'PXE DISCOVER' }).waitFor();
    assert.deepEqual(await page.locator('#stages li.done').allTextContents(), ['DHCP', 'TFTP', 'Talos'], 'a refused config is not the Config stage');
    assert.equal(await page.locator('#events tr.trouble').count(), 1);
    const log = await page.textContent('#kmsg');
    assert.match(log!, /2026-11-22T04:00:01Z \[talos\] task startAllServices/);
    assert.match(log!, /<img src=x onerror=/, 'kernel log markup is shown as text');
    assert.equal(await page.locator('#kmsg img').count(), 0);
    // The timeline comes before everything else on the page.
    await page.locator('#facts dd', { hasText: 'no selector matches and no profile is assigned' }).waitFor();
    const order = await page.locator('#machine-view h2').allTextContents();
    assert.deepEqual(order, ['Boot timeline', 'Kernel log', 'Machine', 'NICs']);
    ctx.timeline.append({ machineId: target, kind: 'ipxe.script', source: 'http', message: 'install script served' });
    await page.locator('#events tr', { hasText: 'install script served' }).waitFor({ timeout: 10_000 });
    await page.locator('#stages li.done', { hasText: 'Script' }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'ui-machine.png'), fullPage: true });

    assert.equal(ctx.machines.get(target)!.acceptance, 'pending');
    await page.click('#accept');
    await page.locator('#accept').waitFor({ state: 'hidden' });
    assert.equal(ctx.machines.get(target)!.acceptance, 'accepted');
    await page.locator('#events tr', { hasText: 'accepted by an operator' }).waitFor();
    const audit = ctx.db.prepare("SELECT actor FROM audit WHERE action = 'machine.accept' AND machine_id = ?").pluck().all(target);
    assert.equal(audit.length, 1);
    ctx.machines.setState(target, 'ready', null);
    ctx.timeline.append({ machineId: target, kind: 'talos.state', source: 'events', message: 'node is ready' });
    await page.locator('#stages li.done', { hasText: 'Joined' }).waitFor({ timeout: 10_000 });
    await page.click('#reprovision');
    await page.locator('#m-sub .a-reprovision').waitFor();
    assert.equal(ctx.machines.get(target)!.reprovision, true);
  });

  test('the table looks right (screenshot) and the page logged no errors', async () => {
    await page.goto(`${h.url}/#/`);
    await page.fill('#f-q', '');
    await page.click('#filters button[type=submit]');
    await page.locator('#count', { hasText: '10001 machines' }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'ui-table.png') });
    const unexpected = problems.filter((p) => !/Content Security Policy|none\.svg|404|401/.test(p));
    assert.deepEqual(unexpected, []);
  });

  test('logout ends the session', async () => {
    await page.click('#logout');
    await page.locator('#login-view').waitFor();
    const r = await page.request.get(`${h.url}/api/v1/machines`);
    assert.equal(r.status(), 401);
  });
});
