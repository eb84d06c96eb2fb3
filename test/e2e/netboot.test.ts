// Real firmware against heph: QEMU machines netboot in the lab (site DHCP in one namespace, heph from this checkout
// in another, the VMs on a bridge), each through one boot path, into the payload that stands in for Talos.
//   P1  OVMF PXE → proxy-DHCP → port 4011 → TFTP ipxe.efi → iPXE → HTTP script → kernel + initrd
//   P2  SeaBIOS + iPXE ROM → proxy-DHCP → HTTP script → kernel + initrd
//   P3  OVMF UEFI HTTP Boot → ipxe.efi over HTTP → iPXE → HTTP script → kernel + initrd
// Each machine fetches the config of its profile, installs it, reports the install as Talos does and reboots; its
// next netboot must get the local-boot answer. The three run at once (about 35 s each alone under TCG).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { HEPH_IP, identity, Lab, labUnavailable, type MachineIdentity } from './lab/lab.ts';
import { HEPH_PORTS, hephCli, startLabHeph, type LabHeph, type TimelineEntry } from './lab/heph.ts';
import { ensurePayload, readInstalled } from './lab/payload.ts';
import { startVm, type BootPath, type Vm } from './lab/vm.ts';
import { eventually } from '../helpers/wait.ts';

const skip = labUnavailable();

interface Case {
  title: string;
  path: BootPath;
  machine: MachineIdentity;
  profile: string;
  /** What the firmware printed on its way to iPXE. */
  firmware: RegExp;
  /** heph's timeline entries (kind: message pattern) before the iPXE script, in order: the path really taken. */
  before: [string, RegExp][];
}
const ALL: Case[] = [
  {
    title: 'P1 UEFI PXE → TFTP ipxe.efi',
    path: 'uefi-pxe',
    machine: identity(1),
    profile: 'alpha',
    firmware: /Start PXE over IPv4[\s\S]*NBP filename is ipxe\.efi/,
    before: [['dhcp.discover', /proxy OFFER: ipxe\.efi$/], ['dhcp.request', /ACK: ipxe\.efi$/], ['tftp.done', /ipxe\.efi sent/], ['dhcp.discover', /boot\.ipxe$/]],
  },
  {
    title: 'P2 BIOS iPXE ROM',
    path: 'bios-ipxe',
    machine: identity(2),
    profile: 'beta',
    firmware: /SeaBIOS[\s\S]*Booting from ROM[\s\S]*iPXE/,
    before: [['dhcp.discover', /boot\.ipxe$/]],
  },
  {
    title: 'P3 UEFI HTTP Boot',
    path: 'uefi-http',
    machine: identity(3),
    profile: 'alpha',
    firmware: /Start HTTP Boot over IPv4[\s\S]*URI: http:\/\/192\.0\.2\.10:8080\/ipxe\.efi/,
    before: [['dhcp.discover', /proxy OFFER: http:\/\/192\.0\.2\.10:8080\/ipxe\.efi$/], ['dhcp.discover', /boot\.ipxe$/]],
  },
];
// E2E_PATHS=bios-ipxe,uefi-http runs only those paths (while developing one).
const CASES = process.env.E2E_PATHS ? ALL.filter((c) => process.env.E2E_PATHS!.split(',').includes(c.path)) : ALL;

interface Outcome {
  vm: Vm;
  serial: string;
  configUrl: string;
  sink: string;
  kernelLog: string;
  sha256: string;
  installed: Buffer;
  machineId: string;
  timeline: TimelineEntry[];
}

describe('netboot with real firmware', { skip: skip ?? false }, () => {
  let lab: Lab;
  let heph: LabHeph;
  const outcomes = new Map<string, Promise<Outcome>>();

  before(async () => {
    const payload = ensurePayload();
    lab = await Lab.create();
    heph = await startLabHeph(lab, payload, CASES.map((c) => ({ machine: c.machine, profile: c.profile })));
    // All machines boot at once; each test below awaits its own.
    for (const c of CASES) {
      const p = boot(c);
      p.catch(() => undefined);
      outcomes.set(c.path, p);
    }
  });
  after(async () => {
    await Promise.allSettled(outcomes.values());
    await lab?.destroy({ keepDir: process.env.E2E_KEEP === '1' });
  });

  async function boot(c: Case): Promise<Outcome> {
    const vm = startVm(lab, { name: c.path, machine: c.machine, path: c.path });
    try {
      const cmdline = await vm.waitForSerial(/heph-payload: cmdline config=(\S+) sink=(\S+) kernel-log=(\S+)/, 300_000);
      const fetched = await vm.waitForSerial(/heph-payload: config fetched bytes=(\d+) sha256=([0-9a-f]{64})/, 120_000);
      await vm.waitForSerial(/heph-payload: rebooting/, 120_000);
      const installed = readInstalled(vm.diskFile);
      assert.ok(installed, `${c.path}: nothing installed on the disk`);
      const machineId = heph.machineId(c.machine.mac);
      assert.ok(machineId, `${c.path}: heph has no machine with MAC ${c.machine.mac}`);
      // After the reboot the firmware netboots again; heph must now send it to its disk.
      const local = await eventually(() => heph.timeline(machineId).find((e) => e.kind === 'ipxe.script' && e.data.action === 'local'), `${c.path}: local-boot answer`, 300_000, 500);
      assert.ok(local);
      return { vm, serial: vm.serial().replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''), configUrl: cmdline[1]!, sink: cmdline[2]!, kernelLog: cmdline[3]!, sha256: fetched[2]!, installed: installed.config, machineId, timeline: heph.timeline(machineId) };
    } finally {
      await vm.stop();
    }
  }

  for (const c of CASES) {
    test(`${c.title}: fetches its profile's config, installs, reports, then boots locally`, { timeout: 600_000 }, async () => {
      const o = await outcomes.get(c.path)!;
      const config = o.installed.toString();
      // heph itself told the machine where to send events and kernel logs (the profiles name neither).
      assert.equal(o.sink, `${HEPH_IP}:${HEPH_PORTS.grpc}`);
      assert.match(o.kernelLog, new RegExp(`^tcp://${HEPH_IP.replace(/\./g, '\\.')}:${HEPH_PORTS.kmsg}/?$`));
      // The machine's matched config: its profile's cluster, the install disk heph set, served over heph's token URL,
      // with the event-sink and kernel-log documents that outlive the install's kernel arguments.
      assert.match(o.configUrl, new RegExp(`^http://${HEPH_IP.replace(/\./g, '\\.')}:${HEPH_PORTS.http}/config/[A-Za-z0-9_-]{43}$`));
      const talos = parseAllDocuments(config).map((d) => d.toJS() as Record<string, unknown>).find((d) => d.version === 'v1alpha1') as { cluster: { clusterName: string }; machine: { install: { disk: string } } } | undefined;
      assert.ok(talos, 'a v1alpha1 document');
      assert.equal(talos.cluster.clusterName, c.profile);
      assert.equal(talos.machine.install.disk, '/dev/vda');
      const docs = parseAllDocuments(config).map((d) => d.toJS() as Record<string, unknown>);
      assert.equal(docs.find((d) => d.kind === 'EventSinkConfig')?.endpoint, o.sink);
      assert.equal(docs.find((d) => d.kind === 'KmsgLogConfig')?.url, o.kernelLog);
      const served = o.timeline.filter((e) => e.kind === 'config.served');
      assert.equal(served.length, 1, 'one config served');
      assert.equal(served[0]!.ip, c.machine.ip);
      assert.equal(served[0]!.data.profile, c.profile);
      assert.equal(served[0]!.data.sha256, o.sha256, 'the disk holds exactly the bytes heph served');

      // The firmware took the path under test: its own console says so, and so do heph's DHCP and TFTP entries.
      assert.match(o.serial, c.firmware);
      const script = o.timeline.findIndex((e) => e.kind === 'ipxe.script');
      let prev = -1;
      for (const [kind, message] of c.before) {
        const i = o.timeline.findIndex((e, j) => j > prev && e.kind === kind && message.test(e.message));
        assert.ok(i > prev && i < script, `${kind} ${message} before the iPXE script; timeline: ${o.timeline.map((e) => `${e.kind}: ${e.message}`).join(' | ')}`);
        prev = i;
      }

      // The timeline (REST API) tells the story in order: script, kernel, initrd, config, Talos install, installed,
      // local boot.
      const kinds = o.timeline.map((e) => (e.kind === 'ipxe.script' ? `ipxe.script:${String(e.data.action)}` : e.kind));
      const story = ['ipxe.script:install', 'asset.kernel', 'asset.initramfs', 'config.served', 'talos.sequence', 'talos.phase', 'talos.state', 'ipxe.script:local'];
      let at = -1;
      for (const step of story) {
        const i = kinds.indexOf(step, at + 1);
        assert.ok(i > at, `timeline step ${step} after ${story[story.indexOf(step) - 1] ?? 'start'}; timeline: ${kinds.join(', ')}`);
        at = i;
      }
      const states = o.timeline.filter((e) => e.kind === 'talos.state').map((e) => e.data.to);
      assert.deepEqual(states.slice(-2), ['installing', 'installed']);
      // What an operator sees with `heph machines show`: the identity QEMU gave the machine (MAC, SMBIOS uuid from
      // -uuid as iPXE reported it), its state, its profile and why, and the end of its timeline.
      const shown = parse(hephCli(heph.settingsFile, ['machines', 'show', c.machine.mac])) as { id: string; uuid: string; state: string; lastIp: string; macs: string[]; wouldGet: { profile: string }; timeline: string[] };
      assert.deepEqual([shown.id, shown.uuid, shown.state, shown.lastIp, shown.macs, shown.wouldGet.profile], [o.machineId, c.machine.uuid, 'installed', c.machine.ip, [c.machine.mac], c.profile]);
      assert.match(shown.timeline.join('\n'), /talos\.state installing → installed[\s\S]*ipxe\.script local: /);

      // What an operator sees with the CLI: the Talos events and the kernel log, filed under this machine.
      const events = hephCli(heph.settingsFile, ['events', '--machine', c.machine.mac, '--json', '-n', '1000']).trim().split('\n');
      assert.ok(events.length >= 14, `heph events lists the machine's events (${events.length})`);
      assert.ok(events.some((l) => l.includes('unix.Reboot(1234567)')), 'the install reboot is listed');
      const kmsg = hephCli(heph.settingsFile, ['kmsg', c.machine.mac, '--json', '-n', '1000']).trim().split('\n').map((l) => JSON.parse(l) as { msg: string; ip: string });
      assert.ok(kmsg.some((l) => l.msg.startsWith('Linux version ')), 'the kernel log starts with the kernel banner');
      assert.ok(kmsg.some((l) => l.msg.includes(`heph-payload: config fetched bytes=${o.installed.length} sha256=${o.sha256}`)));
      assert.ok(kmsg.every((l) => l.ip === c.machine.ip));
    });
  }

  test('machine A\'s config URL is refused from machine B\'s address', { timeout: 600_000, skip: CASES.length < 2 ? 'needs two machines' : false }, async () => {
    const [ca, b] = CASES as [Case, Case];
    const a = await outcomes.get(ca.path)!;
    await outcomes.get(b.path)!.catch(() => undefined);
    // Machine B is off now: a probe on the bridge takes its address and asks for A's config.
    const probe = lab.addProbe('b', b.machine.ip);
    const out = probe.run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', a.configUrl]);
    assert.equal(out, '403');
    const refused = heph.timeline(a.machineId).filter((e) => e.kind === 'alert.token-ip' || e.kind === 'config.refused');
    assert.ok(refused.some((e) => e.ip === b.machine.ip), `a refusal from ${b.machine.ip} is on A's timeline`);
  });
});
