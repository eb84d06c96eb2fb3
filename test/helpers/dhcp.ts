// DHCP peers for the integration tests: a tshark capture decoded by an independent dissector, and a one-shot
// UDP exchange from inside a namespace.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Netns } from './netns.ts';
import { tsharkStarted } from './system.ts';

export const FIELDS = [
  'ip.src', 'ip.dst', 'udp.srcport', 'udp.dstport', 'dhcp.id', 'dhcp.hw.mac_addr', 'dhcp.ip.your', 'dhcp.ip.server', 'dhcp.ip.relay', 'dhcp.server', 'dhcp.file', 'dhcp.option.dhcp',
  'dhcp.option.dhcp_server_id', 'dhcp.option.vendor_class_id', 'dhcp.option.tftp_server_name', 'dhcp.option.bootfile_name', 'dhcp.option.vendor.pxeclient.discovery_control',
  'dhcp.option.agent_information_option.agent_circuit_id',
] as const;
export type Row = Record<(typeof FIELDS)[number], string>;

/**
 * tshark on an interface inside a namespace, written to a pcap file in `dir` and decoded after the capture
 * stopped (decoding live loses the last packets when tshark is interrupted).
 */
export async function capture(ns: Netns, iface: string, filter: string, dir: string): Promise<{ stop(): Promise<Row[]> }> {
  const file = join(dir, `cap-${Date.now()}-${Math.random().toString(36).slice(2)}.pcap`);
  const p = ns.spawn('tshark', ['-i', iface, '-n', '-q', '-f', filter, '-w', file]);
  await tsharkStarted(p);
  // "Capturing on" can come a moment before the filter is live: without this pause the first packet is sometimes missed.
  await sleep(500);
  return {
    async stop() {
      await sleep(500);
      p.kill('SIGINT');
      await new Promise((r) => p.once('exit', r));
      const out = ns.run('tshark', ['-r', file, '-n', '-T', 'fields', '-E', 'separator=|', ...FIELDS.flatMap((f) => ['-e', f])], { timeout: 120_000 });
      return out
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => Object.fromEntries(l.split('|').map((v, i) => [FIELDS[i], v])) as Row);
    },
  };
}

/** Sends one datagram from inside a namespace and returns the first reply (or nothing after 1.5 s). */
export function udpExchange(ns: Netns, bind: { address: string; port: number }, to: { address: string; port: number }, bytes: Buffer): Buffer | undefined {
  const js = `const d=require('node:dgram');const s=d.createSocket({type:'udp4',reuseAddr:true});
s.bind(${bind.port},'${bind.address}',()=>{s.setBroadcast(true);s.send(Buffer.from('${bytes.toString('hex')}','hex'),${to.port},'${to.address}');});
s.on('message',(m)=>{process.stdout.write(m.toString('hex'));process.exit(0)});setTimeout(()=>process.exit(0),1500);`;
  const hex = ns.run(process.execPath, ['-e', js]).trim();
  return hex ? Buffer.from(hex, 'hex') : undefined;
}

/** One counter's value from a /metrics text, 0 when absent. */
export function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}
