// One simulated machine walking heph's whole netboot flow, the way the firmware, iPXE and Talos each would, over
// real sockets from a distinct source address per machine. DHCP runs here, with heph's own codec
// (src/dhcp/codec.ts); every other step runs in the bench's C helpers, which time it themselves, so that what the
// storm measures is the server and not this process's queueing.
import dgram from 'node:dgram';
import { decode as decodeDhcp, encode as encodeDhcp, MessageType, Opt } from '../../src/dhcp/codec.ts';
import type { Download } from './http-stage.ts';

export type Step = 'dhcp-pxe' | 'tftp' | 'dhcp-ipxe' | 'boot.ipxe' | 'ipxe' | 'kernel' | 'initrd' | 'config' | 'events';
export const STEPS: Step[] = ['dhcp-pxe', 'tftp', 'dhcp-ipxe', 'boot.ipxe', 'ipxe', 'kernel', 'initrd', 'config', 'events'];

export interface Target {
  server: string;
  httpPort: number;
  grpcPort: number;
  /** The binary the PXE ROM must be offered (heph's ipxe.x86_64). */
  bootFile: string;
  /** Encoded events.EventRequest messages; bytes `idAt` … +20 hold the event id, replaced per machine. */
  events: { bytes: Buffer; idAt: number }[];
  /** Fetches the boot file over TFTP (bench/tftp-client.c in storm mode). */
  tftp: (m: MachineIdentity, server: string, file: string) => Promise<Timed>;
  /** Downloads the kernel or initrd, its body counted and dropped (bench/http-client.c), on iPXE's pooled connection. */
  download: (m: MachineIdentity, url: string) => Promise<Download>;
  /**
   * GETs a small page (boot.ipxe, the iPXE script, the config) and keeps its body (bench/http-client.c): on iPXE's
   * pooled connection, or with `fresh` (Talos' config fetch) on a new one.
   */
  page: (m: MachineIdentity, url: string, fresh?: boolean) => Promise<Download>;
  /** Publishes the messages as unary gRPC calls, one after another on one connection (bench/grpc-client.c). */
  publish: (m: MachineIdentity, messages: Buffer[]) => Promise<Timed>;
}

/** What a helper reports: the bytes it moved and the time it took, measured by itself. */
export interface Timed {
  bytes: number;
  ms: number;
}

export interface MachineIdentity {
  index: number;
  ip: string;
  mac: string;
  uuid: string;
}

export function identity(index: number, ip: string): MachineIdentity {
  const hex = index.toString(16).padStart(6, '0');
  const mac = `52:54:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`;
  const uuid = `5707a000-0000-4000-8000-${index.toString(16).padStart(12, '0')}`;
  return { index, ip, mac, uuid };
}

/** What one machine saw: per-step time, bytes, and what it learnt (token path) for the fault tests. */
export interface Trace {
  ms: Partial<Record<Step, number>>;
  bytes: Partial<Record<Step, number>>;
  configPath?: string;
  kernelPath?: string;
  initrdPath?: string;
  configServed?: boolean;
  /** DHCP DISCOVERs sent beyond the first of each exchange. */
  dhcpRetransmits?: number;
}

export class StepError extends Error {
  constructor(
    readonly step: Step,
    message: string,
  ) {
    super(`${step}: ${message}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// DHCP: every machine's DISCOVER goes through one relay agent socket (giaddr = the relay, replies come back to
// relay:67), demultiplexed by xid. That is how a routed site reaches heph, and it needs no per-machine port 68.

export class Relay {
  private waiting = new Map<number, (p: ReturnType<typeof decodeDhcp>) => void>();
  private constructor(
    private readonly sock: dgram.Socket,
    private readonly relayIp: string,
    private readonly server: string,
  ) {
    sock.on('message', (buf) => {
      if (buf.length < 8) return;
      const xid = buf.readUInt32BE(4);
      const w = this.waiting.get(xid);
      if (w) (this.waiting.delete(xid), w(decodeDhcp(buf)));
    });
  }

  static async open(relayIp: string, server: string): Promise<Relay> {
    const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(67, relayIp, () => resolve());
    });
    return new Relay(sock, relayIp, server);
  }

  /**
   * One DISCOVER → OFFER exchange, retransmitted as a PXE ROM does (PXE 2.1 §2.2.1: 4 DISCOVERs, waiting 4, 8,
   * 16 and 32 s). `sent` counts the DISCOVERs so retransmissions are reported, not hidden in the latency.
   */
  async discover(m: MachineIdentity, ipxe: boolean, xid: number, waitsMs: number[] = [4000, 8000, 16000, 32000], sent = { n: 0 }): Promise<{ file: string; siaddr: string }> {
    const uuid = Buffer.from(m.uuid.replaceAll('-', ''), 'hex');
    // SMBIOS byte order: the first three fields little-endian, as firmware sends option 97.
    const wire = Buffer.concat([Buffer.from(uuid.subarray(0, 4)).reverse(), Buffer.from(uuid.subarray(4, 6)).reverse(), Buffer.from(uuid.subarray(6, 8)).reverse(), uuid.subarray(8)]);
    const options = new Map<number, Buffer>([
      [Opt.MESSAGE_TYPE, Buffer.from([MessageType.DISCOVER])],
      [Opt.MAX_SIZE, Buffer.from([0x05, 0xc0])],
      [Opt.CLIENT_ARCH, Buffer.from([0, 7])],
      [Opt.CLIENT_NDI, Buffer.from([1, 3, ipxe ? 10 : 0])],
      [Opt.VENDOR_CLASS, Buffer.from(`PXEClient:Arch:00007:UNDI:0030${ipxe ? '10' : '00'}`, 'latin1')],
      ...(ipxe ? ([[Opt.USER_CLASS, Buffer.from('iPXE', 'latin1')]] as [number, Buffer][]) : []),
      [Opt.CLIENT_UUID, Buffer.concat([Buffer.from([0]), wire])],
    ]);
    const chaddr = Buffer.alloc(16);
    Buffer.from(m.mac.replaceAll(':', ''), 'hex').copy(chaddr);
    const bytes = encodeDhcp({ op: 1, htype: 1, hlen: 6, hops: 1, xid, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: this.relayIp, chaddr, sname: '', file: '', options });
    for (const wait of waitsMs) {
      const reply = new Promise<ReturnType<typeof decodeDhcp> | undefined>((resolve) => {
        const t = setTimeout(() => (this.waiting.delete(xid), resolve(undefined)), wait);
        this.waiting.set(xid, (p) => (clearTimeout(t), resolve(p)));
      });
      sent.n++;
      this.sock.send(bytes, 67, this.server);
      const d = await reply;
      if (!d) continue;
      if (!d.ok) throw new Error(`undecodable reply: ${d.error.reason}`);
      const type = d.packet.options.get(Opt.MESSAGE_TYPE)?.[0];
      if (type !== MessageType.OFFER) throw new Error(`reply type ${String(type)}, not OFFER`);
      const file = d.packet.options.get(Opt.BOOTFILE)?.toString('latin1').replace(/\0+$/, '') || d.packet.file;
      return { file, siaddr: d.packet.siaddr };
    }
    throw new Error(`no OFFER after ${waitsMs.length} DISCOVERs`);
  }

  close(): void {
    this.sock.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Talos events: the messages one machine publishes, each with an id of its own.

export function machineEvents(m: MachineIdentity, target: Target, runId: string): Buffer[] {
  return target.events.map((e, i) => {
    const msg = Buffer.from(e.bytes);
    // A 20-character id unique per machine and event, like Talos' xid.
    msg.write(`${runId}${m.index.toString(32).padStart(6, '0')}${i.toString(32).padStart(4, '0')}`.slice(0, 20).padEnd(20, '0'), e.idAt, 'latin1');
    return msg;
  });
}

// ---------------------------------------------------------------------------------------------------------------

const isTimed = (r: object): r is Timed => 'ms' in r && 'bytes' in r;

/**
 * Runs one step; a failure becomes a StepError naming it. A helper's step (a Timed result) is recorded with the
 * helper's own time and bytes; DHCP, which runs in this process, is timed here.
 */
async function timed<T extends object>(trace: Trace, step: Step, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  let r: T;
  try {
    r = await fn();
  } catch (err) {
    throw new StepError(step, (err as Error).message);
  }
  if (isTimed(r)) {
    trace.ms[step] = r.ms;
    trace.bytes[step] = r.bytes;
  } else trace.ms[step] = performance.now() - t0;
  return r;
}

const expectStatus = (step: Step, r: { status: number }, want = 200): void => {
  if (r.status !== want) throw new StepError(step, `HTTP ${r.status}`);
};

/** Runs the whole flow once; throws a StepError naming the step that failed. */
export async function bootOnce(m: MachineIdentity, relay: Relay, target: Target, attempt: number, runId: string, trace: Trace = { ms: {}, bytes: {} }): Promise<Trace> {
  const base = `http://${target.server}:${target.httpPort}`;
  const xid = ((m.index << 8) | ((attempt * 2) & 0xff)) >>> 0;
  const sent = { n: 0 };
  const pxe = await timed(trace, 'dhcp-pxe', () => relay.discover(m, false, xid, undefined, sent));
  if (pxe.file !== target.bootFile) throw new StepError('dhcp-pxe', `offered ${pxe.file}`);
  await timed(trace, 'tftp', () => target.tftp(m, pxe.siaddr, pxe.file));
  const ipxe = await timed(trace, 'dhcp-ipxe', () => relay.discover(m, true, (xid + 1) >>> 0, undefined, sent));
  trace.dhcpRetransmits = sent.n - 2;
  if (ipxe.file !== `${base}/boot.ipxe`) throw new StepError('dhcp-ipxe', `offered ${ipxe.file}`);
  const chain = await timed(trace, 'boot.ipxe', () => target.page(m, ipxe.file));
  expectStatus('boot.ipxe', chain);
  const q = new URLSearchParams({ mac: m.mac.replaceAll(':', '-'), uuid: m.uuid, serial: `STORM-${m.index}`, hostname: `storm-${m.index}`, arch: 'x86_64', platform: 'efi', manufacturer: 'QEMU', product: 'Standard PC' });
  const script = await timed(trace, 'ipxe', () => target.page(m, `${base}/ipxe?${q}`));
  expectStatus('ipxe', script);
  const kernel = /^kernel (?:--name \S+ )?(http:\/\/\S+)/m.exec(script.body ?? '')?.[1];
  const initrd = /^initrd (?:--name \S+ )?(http:\/\/\S+)/m.exec(script.body ?? '')?.[1];
  const config = /talos\.config=(http:\/\/\S+)/.exec(script.body ?? '')?.[1];
  if (!kernel || !initrd || !config) throw new StepError('ipxe', `not an install script: ${(script.body ?? '').slice(0, 200)}`);
  trace.kernelPath = new URL(kernel).pathname;
  trace.initrdPath = new URL(initrd).pathname;
  trace.configPath = new URL(config).pathname;
  for (const [step, url] of [['kernel', kernel], ['initrd', initrd]] as const) {
    const r = await timed(trace, step, () => target.download(m, url));
    expectStatus(step, r);
  }
  const cfg = await timed(trace, 'config', () => target.page(m, config, true));
  expectStatus('config', cfg);
  trace.configServed = true;
  await timed(trace, 'events', () => target.publish(m, machineEvents(m, target, runId)));
  return trace;
}
