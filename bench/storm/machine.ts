// One simulated machine walking heph's whole netboot flow, the way the firmware, iPXE and Talos each would.
// Packets are built and read with heph's own codecs (src/dhcp/codec.ts, src/tftp/codec.ts); what is under test
// is the server, over real sockets, from a distinct source address per machine.
import dgram from 'node:dgram';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { decode as decodeDhcp, encode as encodeDhcp, MessageType, Opt } from '../../src/dhcp/codec.ts';
import { decode as decodeTftp, encodeAck, encodeError, encodeRequest, ErrorCode, Op } from '../../src/tftp/codec.ts';

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
  /**
   * Fetches the boot file over TFTP and times it itself (bench/tftp-client.c in storm mode); without it, tftpGet
   * in this process, timed here.
   */
  tftp?: (m: MachineIdentity, server: string, file: string) => Promise<{ bytes: number; ms: number }>;
  /** Downloads the kernel and initrd and times them itself (bench/http-client.c); without it, httpGet, timed here. */
  download?: (m: MachineIdentity, url: string) => Promise<{ status: number; bytes: number; ms: number }>;
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
// TFTP: RRQ with the options EDK2 sends (blksize, tsize, windowsize), ACK per window, from the machine's address.

export async function tftpGet(m: MachineIdentity, server: string, file: string, opts: { blksize?: number; windowsize?: number; timeoutMs?: number } = {}): Promise<number> {
  const blksize = opts.blksize ?? 1468;
  const windowsize = opts.windowsize ?? 4;
  const timeoutMs = opts.timeoutMs ?? 2000;
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, m.ip, () => resolve());
  });
  try {
    return await new Promise<number>((resolve, reject) => {
      let peer: { address: string; port: number } | undefined;
      let expected = 1;
      let received = 0;
      // Without an OACK the server uses the RFC 1350 defaults: 512-byte blocks, one block per ACK.
      let window = 1;
      let windowLeft = 1;
      let size = 512;
      let timer: NodeJS.Timeout;
      let tries = 0;
      const request = encodeRequest(Op.RRQ, file, 'octet', [['blksize', String(blksize)], ['tsize', '0'], ['windowsize', String(windowsize)]]);
      const arm = (resend: () => void): void => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          if (++tries > 5) return reject(new Error(`timed out at block ${expected}`));
          resend();
          arm(resend);
        }, timeoutMs);
      };
      const sendRrq = (): void => sock.send(request, 69, server);
      const ack = (block: number): void => {
        if (peer) sock.send(encodeAck(block & 0xffff), peer.port, peer.address);
      };
      sock.on('message', (buf, rinfo) => {
        if (peer && (rinfo.port !== peer.port || rinfo.address !== peer.address)) {
          sock.send(encodeError(ErrorCode.UNKNOWN_TID, 'unknown transfer id'), rinfo.port, rinfo.address);
          return;
        }
        peer ??= { address: rinfo.address, port: rinfo.port };
        const p = decodeTftp(buf);
        tries = 0;
        if (p.op === Op.OACK) {
          size = Number(p.options.get('blksize') ?? 512);
          window = Number(p.options.get('windowsize') ?? 1);
          windowLeft = window;
          ack(0);
          arm(() => ack(0));
        } else if (p.op === Op.DATA) {
          if (p.block !== (expected & 0xffff)) {
            // Out of order (a lost datagram): re-ACK the last good block so the server resends the window from there.
            ack(expected - 1);
            return;
          }
          received += p.data.length;
          expected++;
          const last = p.data.length < size;
          if (last || --windowLeft === 0) {
            ack(expected - 1);
            windowLeft = window;
          }
          if (last) {
            clearTimeout(timer);
            resolve(received);
          } else arm(() => ack(expected - 1));
        } else if (p.op === Op.ERROR) {
          clearTimeout(timer);
          reject(new Error(`server ERROR ${p.code}: ${p.message}`));
        }
      });
      sendRrq();
      arm(sendRrq);
    });
  } finally {
    sock.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP from the machine's address, one connection per request (as iPXE does for each chained URL).

export function httpGet(ip: string, url: string, opts: { keep?: boolean; timeoutMs?: number } = {}): Promise<{ status: number; bytes: number; body?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { localAddress: ip, agent: false, timeout: opts.timeoutMs ?? 30_000 }, (res) => {
      let bytes = 0;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (opts.keep) chunks.push(c);
      });
      res.on('end', () => {
        const len = res.headers['content-length'];
        if (res.statusCode === 200 && len !== undefined && Number(len) !== bytes) return reject(new Error(`short body: ${bytes} of ${len}`));
        resolve({ status: res.statusCode ?? 0, bytes, ...(opts.keep ? { body: Buffer.concat(chunks).toString('utf8') } : {}) });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Talos events: unary events.EventSinkService/Publish calls over one HTTP/2 connection from the machine's address.

function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

export async function publishEvents(m: MachineIdentity, target: Target, runId: string): Promise<number> {
  const session = http2.connect(`http://${target.server}:${target.grpcPort}`, {
    createConnection: () => net.connect({ host: target.server, port: target.grpcPort, localAddress: m.ip }),
  });
  // A dropped connection fails the request in flight; the session's own error event must not crash the client.
  session.on('error', () => {});
  try {
    let bytes = 0;
    for (const [i, e] of target.events.entries()) {
      const msg = Buffer.from(e.bytes);
      // A 20-character id unique per machine and event, like Talos' xid.
      msg.write(`${runId}${m.index.toString(32).padStart(6, '0')}${i.toString(32).padStart(4, '0')}`.slice(0, 20).padEnd(20, '0'), e.idAt, 'latin1');
      const body = grpcFrame(msg);
      bytes += body.length;
      await new Promise<void>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/events.EventSinkService/Publish', 'content-type': 'application/grpc', te: 'trailers' });
        let status: string | undefined;
        req.on('response', (h) => (status = h['grpc-status'] as string | undefined ?? status));
        req.on('trailers', (h) => (status = h['grpc-status'] as string | undefined));
        req.on('data', () => {});
        req.on('end', () => (status === '0' ? resolve() : reject(new Error(`grpc-status ${String(status)}`))));
        req.on('error', reject);
        req.setTimeout(30_000, () => req.close(http2.constants.NGHTTP2_CANCEL));
        req.end(body);
      });
    }
    return bytes;
  } finally {
    session.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------

/** Times the step here, unless its result carries `ms` of its own (a C helper that timed the transfer itself). */
async function timed<T>(trace: Trace, step: Step, fn: () => Promise<T>, bytes?: (r: T) => number): Promise<T> {
  const t0 = performance.now();
  let r: T;
  try {
    r = await fn();
  } catch (err) {
    throw new StepError(step, (err as Error).message);
  }
  const own = (r as { ms?: unknown }).ms;
  trace.ms[step] = typeof own === 'number' ? own : performance.now() - t0;
  if (bytes) trace.bytes[step] = bytes(r);
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
  const fetchBoot = (): Promise<{ bytes: number; ms?: number }> => (target.tftp ? target.tftp(m, pxe.siaddr, pxe.file) : tftpGet(m, pxe.siaddr, pxe.file).then((bytes) => ({ bytes })));
  await timed(trace, 'tftp', fetchBoot, (r) => r.bytes);
  const ipxe = await timed(trace, 'dhcp-ipxe', () => relay.discover(m, true, (xid + 1) >>> 0, undefined, sent));
  trace.dhcpRetransmits = sent.n - 2;
  if (ipxe.file !== `${base}/boot.ipxe`) throw new StepError('dhcp-ipxe', `offered ${ipxe.file}`);
  const chain = await timed(trace, 'boot.ipxe', () => httpGet(m.ip, ipxe.file, { keep: true }), (r) => r.bytes);
  expectStatus('boot.ipxe', chain);
  const q = new URLSearchParams({ mac: m.mac.replaceAll(':', '-'), uuid: m.uuid, serial: `STORM-${m.index}`, hostname: `storm-${m.index}`, arch: 'x86_64', platform: 'efi', manufacturer: 'QEMU', product: 'Standard PC' });
  const script = await timed(trace, 'ipxe', () => httpGet(m.ip, `${base}/ipxe?${q}`, { keep: true }), (r) => r.bytes);
  expectStatus('ipxe', script);
  const kernel = /^kernel (?:--name \S+ )?(http:\/\/\S+)/m.exec(script.body ?? '')?.[1];
  const initrd = /^initrd (?:--name \S+ )?(http:\/\/\S+)/m.exec(script.body ?? '')?.[1];
  const config = /talos\.config=(http:\/\/\S+)/.exec(script.body ?? '')?.[1];
  if (!kernel || !initrd || !config) throw new StepError('ipxe', `not an install script: ${(script.body ?? '').slice(0, 200)}`);
  trace.kernelPath = new URL(kernel).pathname;
  trace.initrdPath = new URL(initrd).pathname;
  trace.configPath = new URL(config).pathname;
  for (const [step, url] of [['kernel', kernel], ['initrd', initrd]] as const) {
    const get = (): Promise<{ status: number; bytes: number; ms?: number }> => (target.download ? target.download(m, url) : httpGet(m.ip, url, { timeoutMs: 120_000 }));
    const r = await timed(trace, step, get, (x) => x.bytes);
    expectStatus(step, r);
  }
  const cfg = await timed(trace, 'config', () => httpGet(m.ip, config, { keep: true }), (r) => r.bytes);
  expectStatus('config', cfg);
  trace.configServed = true;
  await timed(trace, 'events', () => publishEvents(m, target, runId), (n) => n);
  return trace;
}
