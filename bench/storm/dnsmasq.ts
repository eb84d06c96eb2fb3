// dnsmasq as the reference TFTP server for the storm's TFTP step alone: TFTP only (no DNS, no DHCP), serving the
// directory heph serves the iPXE binaries from, on an address of its own in the lab's server namespace (it can
// only listen on port 69, which heph holds on its own address), stopped by PID.
import { once } from 'node:events';
import type { Netns } from '../../test/helpers/netns.ts';

export async function startDnsmasqTftp(ns: Netns, root: string, address: string, maxTransfers: number): Promise<{ pid: number; stop(): Promise<void> }> {
  ns.run('ip', ['addr', 'add', `${address}/32`, 'dev', 'eth0']);
  const proc = ns.spawn('dnsmasq', ['--conf-file=/dev/null', '--port=0', '--enable-tftp', `--tftp-root=${root}`, `--tftp-max=${maxTransfers}`, `--listen-address=${address}`, '--bind-interfaces', '-d']);
  const exited = once(proc, 'exit');
  // -d logs to stderr (a line per transfer): read it, or the pipe fills and dnsmasq blocks on its next write.
  let log = '';
  await new Promise<void>((resolve, reject) => {
    proc.stderr!.on('data', (d: Buffer) => {
      if (log.length < 4096) log += d.toString();
      if (/TFTP root is/.test(log)) resolve();
    });
    void exited.then(() => reject(new Error(`dnsmasq exited: ${log.trim()}`)));
  });
  return {
    pid: proc.pid!,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}
