// `heph lab` as a person runs it: one machine boots to "installed" against the lab heph, then Ctrl-C (SIGINT)
// stops everything and removes the namespaces and the lab directory.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO } from '../helpers/heph.ts';
import { labUnavailable } from './lab/lab.ts';

const skip = labUnavailable();

test('heph lab boots a machine, echoes its progress and cleans up on Ctrl-C', { skip: skip ?? false, timeout: 400_000 }, async () => {
  const lab = spawn(process.execPath, [join(REPO, 'bin/heph.js'), 'lab', '--machines', '1', '--path', 'bios-ipxe', '--port', '0'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  lab.stdout.on('data', (d: Buffer) => (out += d.toString()));
  lab.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => lab.on('exit', (code) => r(code)));
  try {
    const end = Date.now() + 300_000;
    while (!/\[vm1-bios-ipxe\] rebooting/.test(out)) {
      if (lab.exitCode !== null) assert.fail(`heph lab exited early (${lab.exitCode}):\n${out}`);
      if (Date.now() > end) assert.fail(`no "rebooting" from the machine:\n${out}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    // The admin listener, forwarded to a host loopback port, answers the person's API token.
    const web = /heph web\/API +(http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1];
    const token = /API token +(\S+)/.exec(out)?.[1];
    assert.ok(web && token, `the web address and a token were printed:\n${out}`);
    const res = await fetch(`${web}/api/v1/machines`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { items: { macs: string[] }[] };
    assert.deepEqual(body.items.map((m) => m.macs), [['52:54:00:e2:e0:01']]);
  } finally {
    lab.kill('SIGINT');
  }
  assert.equal(await exited, 0, out);

  // It told the person where to look, and the machine went through the whole install.
  assert.match(out, /vm1-bios-ipxe +mac 52:54:00:e2:e0:01 +ip 192\.0\.2\.101 +uuid 7e57b001-0000-4000-8000-000000000001/);
  for (const step of ['config fetched', 'installed to /dev/vda', 'event sent 44-installed-sequence-reboot', 'kernel log sent']) assert.ok(out.includes(`[vm1-bios-ipxe] ${step}`), step);
  assert.match(out, /heph lab: removed/);

  // Nothing is left: not its namespaces, not its directory.
  const names = /namespaces +(\S+) \(site DHCP\), (\S+) \(heph\), (\S+) \(bridge, VMs\)/.exec(out);
  assert.ok(names, 'the namespaces were printed');
  const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  for (const ns of names.slice(1)) assert.ok(!left.includes(ns!), `${ns} was removed`);
  const dir = /lab directory +(\S+)/.exec(out)?.[1];
  assert.ok(dir && !existsSync(dir), 'the lab directory was removed');
});
