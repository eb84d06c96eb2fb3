// nginx (Debian nginx-light) as the reference static file server: sendfile on, one worker, its own config and
// prefix in a temp dir, run inside the lab's server namespace and stopped by PID.
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Netns } from '../../test/helpers/netns.ts';

export async function startNginx(ns: Netns, dir: string, root: string, listen: string): Promise<{ pid: number; stop(): Promise<void> }> {
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 0;
  client_body_temp_path ${dir};
  server {
    listen ${listen} backlog=4096;
    root ${root};
  }
}
`,
  );
  const proc: ChildProcess = ns.spawn('nginx', ['-p', dir, '-c', conf, '-g', 'daemon off; master_process off;']);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  // Ready when the port answers.
  for (let i = 0; i < 50; i++) {
    try {
      ns.run('curl', ['-s', '-o', '/dev/null', `http://${listen}/`], { timeout: 2000 });
      break;
    } catch {
      if (proc.exitCode !== null) throw new Error(`nginx exited: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    pid: proc.pid!,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}
