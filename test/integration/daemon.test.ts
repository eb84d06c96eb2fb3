import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HEPH_BIN, REPO, spawnHeph, tempDir } from '../helpers/heph.ts';
import { canUseNetns, Netns } from '../helpers/netns.ts';

const dirs: { remove(): void }[] = [];
after(() => dirs.forEach((d) => d.remove()));

function heph(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; prefix?: string[] } = {}) {
  const cmd = [...(opts.prefix ?? []), process.execPath, HEPH_BIN, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: opts.cwd ?? REPO, env: { ...process.env, ...opts.env }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function settingsFile(text: string): { file: string; dir: string } {
  const d = tempDir();
  dirs.push(d);
  const file = join(d.path, 'heph.yaml');
  writeFileSync(file, text);
  return { file, dir: d.path };
}

function listening(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

describe('heph CLI', () => {
  it('prints help and version, and exits 2 with usage on an unknown command or flag', () => {
    const help = heph(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /usage: heph <command>/);
    assert.match(help.stdout, /serve/);
    assert.equal(heph(['--version']).stdout.trim(), '0.1.0');
    const unknown = heph(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^heph: unknown command "frobnicate"/);
    assert.match(unknown.stderr, /usage: heph <command>/);
    const flag = heph(['serve', '--frob']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /Unknown option '--frob'/);
    assert.match(flag.stderr, /usage: heph serve/);
    assert.equal(heph(['--frob']).code, 2);
  });

  it('stops at startup on a bad settings file, naming file, line, field and reason', () => {
    const { file } = settingsFile('http:\n  port: 99999\n');
    const r = heph(['serve', '--config', file]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), `heph: settings file ${file}, line 2: http.port: expected a whole number from 0 to 65535, got number 99999`);
  });

  it('checks settings without starting', () => {
    const { file } = settingsFile('http:\n  port: 9000\n');
    const r = heph(['settings', 'check', '--config', file]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /settings OK/);
  });
});

describe('heph serve', () => {
  it('serves /healthz and /metrics with a SQLite file in the data dir, and stops on SIGTERM within 5 s', async () => {
    const h = await spawnHeph({ log: { level: 'info' }, http: { listen: '127.0.0.1', port: 0 }, grpc: { listen: '127.0.0.1', port: 0 } });
    try {
      const up = h.logs.find((l) => l.msg === 'heph is up')!;
      const services = up.services as Record<string, { listening?: { tcp: string } }>;
      const url = `http://${services.http!.listening!.tcp}`;
      const health = await fetch(`${url}/healthz`);
      assert.equal(health.status, 200);
      const body = (await health.json()) as { status: string; services: Record<string, { state: string }> };
      assert.equal(body.status, 'ok');
      assert.equal(body.services.http!.state, 'up');
      assert.equal(body.services.database!.state, 'up');
      for (const name of ['dhcp', 'tftp']) assert.equal(body.services[name]!.state, 'disabled');
      const metrics = await fetch(`${url}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
      const text = await metrics.text();
      assert.match(text, /^process_resident_memory_bytes \d+/m);
      assert.match(text, /^# TYPE heph_inventory_write_errors_total counter$/m);
      const dbFile = String(up.database);
      assert.ok(existsSync(dbFile));
      assert.equal(statSync(dbFile).mode & 0o777, 0o600);
      const started = Date.now();
      const code = await h.stop();
      assert.equal(code, 0);
      assert.ok(Date.now() - started < 5000, 'stopped within 5 s');
      assert.ok(h.logs.some((l) => l.msg === 'heph stopped'));
    } finally {
      await h.stop();
    }
  });

  it('explains a port that is already in use and exits non-zero', async () => {
    const { server, port } = await listening();
    try {
      const { file } = settingsFile(`http:\n  listen: 127.0.0.1\n  port: ${port}\ngrpc:\n  port: 0\n`);
      const r = heph(['serve', '--config', file]);
      assert.equal(r.code, 1);
      assert.equal(
        r.stderr.trim(),
        `heph: http: cannot listen on TCP 127.0.0.1:${port}: the port is already in use by another program.\n  fix: Find it with \`ss -tlnp 'sport = :${port}'\`; stop it, or pick another port with http.port.`,
      );
    } finally {
      server.close();
    }
  });

  it('names a missing interface', () => {
    const { file } = settingsFile('network:\n  interfaces: [nosuchif0]\ndhcp:\n  enabled: true\n');
    const r = heph(['serve', '--config', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^heph: network\.interfaces: there is no interface named nosuchif0 on this machine \(it has: .*lo.*\)\.\n {2}fix: Name the interface facing the machines/);
  });

  it('explains EACCES on a privileged port with the capability to grant', { skip: process.getuid?.() !== 0 || !canUseNetns() ? 'needs root and network namespaces' : false }, () => {
    // A namespace of its own with the standard privileged-port boundary, so the result does not depend on the host sysctl.
    const ns = Netns.create('eacces');
    try {
      ns.run('sysctl', ['-q', '-w', 'net.ipv4.ip_unprivileged_port_start=1024']);
      const { file, dir } = settingsFile(`dataDir: data\nhttp:\n  listen: 127.0.0.1\n  port: 80\ngrpc:\n  port: 0\n`);
      chownSync(dir, 65534, 65534);
      const r = heph(['serve', '--config', file], { cwd: dir, prefix: ['ip', 'netns', 'exec', ns.name, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'], env: { HOME: dir } });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^heph: http: cannot listen on TCP 127\.0\.0\.1:80: permission denied \(ports below 1024 are privileged\)\.\n {2}fix: Run heph as root, or grant it CAP_NET_BIND_SERVICE/);
      assert.match(r.stderr, /AmbientCapabilities=CAP_NET_BIND_SERVICE/);
    } finally {
      ns.destroy();
    }
  });
});
