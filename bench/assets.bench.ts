// One-stream download speed of a verified asset from heph's /assets route, against nginx serving the same file, in the
// same run. usage: npm run bench -- assets [--mib 256] [--runs 3]
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { importRelease } from '../src/assets/import.ts';
import { table } from './lib.ts';
import { inProcessHeph, tempDir } from '../test/helpers/heph.ts';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '256' }, runs: { type: 'string', default: '3' } } });
const mib = Number(values.mib);
const runs = Number(values.runs);

const dir = tempDir('heph-bench-assets-');
const release = join(dir.path, 'v1.13.9');
mkdirSync(release);
const file = join(release, 'initramfs-amd64.xz');
const h = createHash('sha512');
const fd = openSync(file, 'w');
for (let i = 0; i < mib; i++) {
  const chunk = randomBytes(1 << 20);
  h.update(chunk);
  writeSync(fd, chunk);
}
closeSync(fd);
// nginx workers run as an unprivileged user: let them read the reference copy.
chmodSync(dir.path, 0o755);
chmodSync(release, 0o755);
chmodSync(file, 0o644);
writeFileSync(join(release, 'sha512sum.txt'), `${h.digest('hex')}  initramfs-amd64.xz\n`);

const heph = await inProcessHeph();
const [asset] = await importRelease({ db: heph.daemon.ctx.db, dataDir: heph.daemon.ctx.dataDir, source: release });
const hephUrl = `${heph.url}/assets/${asset!.id.slice(0, 64)}/${asset!.name}`;

const nginxPort = 20000 + Math.floor(Math.random() * 20000);
const conf = join(dir.path, 'nginx.conf');
writeFileSync(
  conf,
  `daemon off; worker_processes 1; pid ${dir.path}/nginx.pid; error_log ${dir.path}/nginx.err;
events { worker_connections 64; }
http { access_log off; sendfile on; tcp_nopush on; client_body_temp_path ${dir.path}/t; proxy_temp_path ${dir.path}/t;
  fastcgi_temp_path ${dir.path}/t; uwsgi_temp_path ${dir.path}/t; scgi_temp_path ${dir.path}/t;
  server { listen 127.0.0.1:${nginxPort}; root ${release}; } }\n`,
);
const nginx = spawn('nginx', ['-e', join(dir.path, 'nginx.err'), '-c', conf, '-p', dir.path], { stdio: 'inherit' });
await new Promise((r) => setTimeout(r, 500));
const nginxUrl = `http://127.0.0.1:${nginxPort}/initramfs-amd64.xz`;

/** MiB/s of one curl download to /dev/null (curl runs apart, so heph's event loop is not shared with the client). */
function speed(url: string): number {
  const [bps, size] = execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{speed_download} %{size_download}', url], { encoding: 'utf8' }).split(' ').map(Number);
  if (size !== mib << 20) throw new Error(`${url}: got ${size} bytes, not ${mib} MiB`);
  return bps! / (1 << 20);
}

// Asynchronous curl for heph: the daemon runs in this process and must keep serving while curl downloads.
function speedAsync(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn('curl', ['-s', '-o', '/dev/null', '-w', '%{speed_download} %{size_download}', url]);
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', (code) => {
      const [bps, size] = out.split(' ').map(Number);
      if (code !== 0 || size !== mib << 20) reject(new Error(`${url}: curl exited ${code}, ${size} bytes`));
      else resolve(bps! / (1 << 20));
    });
  });
}

const best = (xs: number[]): number => Math.max(...xs);
const nginxRuns: number[] = [];
const hephRuns: number[] = [];
try {
  speed(nginxUrl);
  await speedAsync(hephUrl); // warm the page cache and the verification cache
  for (let i = 0; i < runs; i++) {
    nginxRuns.push(speed(nginxUrl));
    hephRuns.push(await speedAsync(hephUrl));
  }
} finally {
  nginx.kill('SIGTERM');
  await heph.stop();
  dir.remove();
}
console.log(`one ${mib} MiB download over loopback, best of ${runs} (curl -o /dev/null)`);
console.log(
  table([
    { server: 'nginx (sendfile)', 'MiB/s': best(nginxRuns), ratio: 1 },
    { server: 'heph /assets (sendfile)', 'MiB/s': best(hephRuns), ratio: best(hephRuns) / best(nginxRuns) },
  ]),
);
