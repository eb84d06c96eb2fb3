import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { identity, Lab, labUnavailable } from './lab.ts';
import { HEPH_PORTS, hephCli, startLabHeph, type LabHeph } from './heph.ts';
import { ensurePayload } from './payload.ts';
import { startVm, type BootPath, type Vm } from './vm.ts';

/**
 * `heph lab`: the e2e machinery for a person. Builds the lab, starts heph and the machines, prints where to look,
 * echoes what the machines report, and tears everything down on Ctrl-C (or SIGTERM).
 */
export async function runLab(o: { paths: BootPath[]; port: number; keep: boolean }): Promise<number> {
  const why = labUnavailable();
  if (why) {
    console.error(`heph lab: cannot run here: ${why}`);
    return 1;
  }
  console.log('heph lab: building the payload (cached after the first time)…');
  const payload = ensurePayload();
  const lab = await Lab.create();
  const vms: Vm[] = [];
  let forward: Server | undefined;
  let done: () => void = () => undefined;
  const stopped = new Promise<void>((r) => (done = r));
  const onSignal = (): void => done();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const machines = o.paths.map((path, i) => ({ path, machine: identity(i + 1), profile: 'lab' }));
    const heph = await startLabHeph(lab, payload, machines);
    forward = await forwardAdmin(lab, o.port);
    const token = adminToken(heph);
    for (const m of machines) vms.push(startVm(lab, { name: `vm${m.machine.index}-${m.path}`, machine: m.machine, path: m.path }));
    console.log(`
heph lab is up (Ctrl-C to stop and remove it)
  lab directory   ${lab.dir}
  heph log        ${lab.dir}/heph.log     settings: ${heph.settingsFile}
  site DHCP log   ${lab.dir}/dnsmasq.log
  heph web/API    http://127.0.0.1:${(forward.address() as AddressInfo).port}/ (forwarded to heph's admin listener in its namespace)
  API token       ${token ?? '(none: this heph has no "tokens" command)'}
  heph HTTP       ${heph.url} (inside the lab only)
  namespaces      ${lab.site.name} (site DHCP), ${lab.heph.name} (heph), ${lab.lan.name} (bridge, VMs)
machines:`);
    for (const vm of vms) console.log(`  ${vm.name.padEnd(16)} mac ${vm.machine.mac}  ip ${vm.machine.ip}  uuid ${vm.machine.uuid}\n${''.padEnd(18)} serial: tail -f ${vm.serialFile}`);
    console.log(`try (from this checkout):
  node bin/heph.js machines list --config ${heph.settingsFile}
  node bin/heph.js machines show ${vms[0]!.machine.mac} --config ${heph.settingsFile}
  node bin/heph.js events --config ${heph.settingsFile}
  node bin/heph.js kmsg ${vms[0]!.machine.mac} --config ${heph.settingsFile}
`);
    const echo = setInterval(() => {
      for (const vm of vms) echoProgress(vm);
    }, 500);
    await stopped;
    clearInterval(echo);
    console.log('\nheph lab: stopping…');
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    forward?.close();
    await Promise.all(vms.map((v) => v.stop()));
    await lab.destroy({ keepDir: o.keep });
    console.log(o.keep ? `heph lab: removed; files kept in ${lab.dir}` : 'heph lab: removed');
  }
}

/** An admin API token for the person at the keyboard (the lab is theirs alone), when this heph has API tokens. */
function adminToken(heph: LabHeph): string | undefined {
  try {
    return hephCli(heph.settingsFile, ['tokens', 'create', '--name', 'heph-lab', '--scope', 'admin']).trim() || undefined;
  } catch {
    return undefined;
  }
}

const printed = new Map<string, number>();

/** Prints each new "heph-payload:" line a machine wrote to its serial console. */
function echoProgress(vm: Vm): void {
  const lines = vm.serial().split(/\r?\n/).filter((l) => l.startsWith('heph-payload: '));
  const from = printed.get(vm.name) ?? 0;
  for (const l of lines.slice(from)) console.log(`[${vm.name}] ${l.slice('heph-payload: '.length)}`);
  printed.set(vm.name, lines.length);
}

/**
 * 127.0.0.1:port on this host → heph's admin listener on the loopback of its namespace. Each connection is
 * carried by a busybox nc started in the namespace: no interface or route is added to the host.
 */
function forwardAdmin(lab: Lab, port: number): Promise<Server> {
  const server = createServer((sock) => {
    const nc = spawn('ip', ['netns', 'exec', lab.heph.name, 'busybox', 'nc', '127.0.0.1', String(HEPH_PORTS.admin)], { stdio: ['pipe', 'pipe', 'ignore'] });
    lab.track(nc, 'forward.log');
    sock.pipe(nc.stdin!);
    nc.stdout!.pipe(sock);
    const end = (): void => {
      sock.destroy();
      if (nc.exitCode === null) nc.kill('SIGTERM');
    };
    sock.on('error', end);
    sock.on('close', end);
    nc.on('exit', end);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
