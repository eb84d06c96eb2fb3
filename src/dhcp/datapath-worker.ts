// The DHCP data plane, in a worker thread: waits on the served sockets with poll(), takes up to a batch of
// datagrams per recvmmsg, answers each with the pure respond(), sends the replies with one sendmmsg, and hands
// the main thread one record per datagram (outcome-log.ts) once per flush interval. The main thread keeps the
// metrics, the inventory and the logs; it talks to this loop with messages plus a wake-up eventfd, so the loop
// never needs its own event loop and stops as soon as it is told.
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { ipv4FromNumber, ipv4ToNumber } from '../net/ipv4.ts';
import { eventfdClear, loadSys } from '../net/syscalls.ts';
import { DatagramSlots, Poller } from '../net/udp-batch.ts';
import { MAX_REPLY, MAX_REQUEST } from './codec.ts';
import { OutcomeWriter, outcomeCode } from './outcome-log.ts';
import { RejectionSet, respondConfig } from './policy.ts';
import { respond, type RespondConfig } from './respond.ts';
import { warmupRequests } from './warmup.ts';
import type { ToMain, ToWorker, WorkerInit } from './datapath.ts';

const OVERSIZE = outcomeCode({ kind: 'malformed', reason: 'oversize' });
const WARMUP_ROUNDS = 600;

function run(init: WorkerInit): void {
  const port = parentPort!;
  const post = (m: ToMain, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);
  let rejections = new RejectionSet(init.rejections);
  const configs: RespondConfig[] = init.configs.map((p) => respondConfig(p, () => rejections));
  const rx = new DatagramSlots(init.batch, MAX_REQUEST);
  const tx = new DatagramSlots(init.batch, MAX_REPLY);
  const poller = new Poller([init.wakeFd, ...init.sockets.map((s) => s.fd)]);
  const codes = new Uint8Array(init.batch);
  const datagrams: Buffer[] = [];
  // Fixed native memory: one view per send slot for the whole life of the loop.
  const replySlots = Array.from({ length: init.batch }, (_, i) => tx.slot(i));
  const clients = new Uint8Array(init.batch);
  const log = new OutcomeWriter();
  // Sources repeat (0.0.0.0 for broadcasts, the relay's address): the last one's text is kept.
  let lastFrom = 0;
  let lastFromText = '0.0.0.0';
  let flushAt = 0;
  let sendErrors = 0;
  let lastSendError: { errno: number; to: { address: string; port: number } } | undefined;

  const flush = (): void => {
    if (log.empty && sendErrors === 0) return;
    const { records, length } = log.take();
    post({ type: 'outcomes', records, length, sendErrors, lastSendError }, [records]);
    sendErrors = 0;
    lastSendError = undefined;
  };

  /** Applies what the main thread sent; true when told to stop. */
  const control = (): boolean => {
    eventfdClear(loadSys(), init.wakeFd);
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
      const msg = m.message as ToWorker;
      if (msg.type === 'stop') return true;
      rejections = new RejectionSet(msg.ids);
    }
    return false;
  };

  const serve = (s: WorkerInit['sockets'][number]): void => {
    const cfg = configs[s.iface]!;
    // Bounded: after a few full batches the other sockets (and a stop request) get their turn.
    for (let round = 0; round < 4; round++) {
      const n = rx.receive(s.fd);
      if (n === 0) return;
      let out = 0;
      for (let i = 0; i < n; i++) {
        clients[i] = 0;
        datagrams[i] = rx.datagram(i);
        if (rx.truncated(i)) {
          codes[i] = OVERSIZE;
          continue;
        }
        const from = rx.address(i);
        if (from !== lastFrom) {
          lastFrom = from;
          lastFromText = ipv4FromNumber(from);
        }
        const o = respond(datagrams[i]!, { via: s.via, from: { address: lastFromText, port: rx.port(i) } }, cfg, replySlots[out]);
        codes[i] = outcomeCode(o);
        if (o.kind === 'malformed') continue;
        if (o.client) clients[i] = 1;
        if (o.kind !== 'reply') continue;
        tx.prepare(out++, o.bytes.length, s.via === 'proxy' ? from : ipv4ToNumber(o.to.address), o.to.port);
      }
      if (out > 0) {
        tx.send(s.fd, out, (errno, slot) => {
          sendErrors++;
          lastSendError = { errno, to: { address: ipv4FromNumber(tx.address(slot)), port: tx.port(slot) } };
        });
      }
      if (log.empty) flushAt = performance.now() + init.flushMs;
      for (let i = 0; i < n; i++) {
        const d = datagrams[i]!;
        if (!log.add(s.iface, s.via, codes[i]!, clients[i] === 1, rx.address(i), rx.port(i), d)) {
          flush();
          flushAt = performance.now() + init.flushMs;
          log.add(s.iface, s.via, codes[i]!, clients[i] === 1, rx.address(i), rx.port(i), d);
        }
      }
      if (n < init.batch) return;
    }
  };

  // Run every path hot before serving (warmup.ts says why); the records and replies go nowhere.
  const warm = warmupRequests();
  for (let round = 0; round < WARMUP_ROUNDS; round++) {
    for (const w of warm) {
      if (w.bytes.length > 33) w.bytes[33] = round & 0xff; // a new MAC each round, as in a storm
      const o = respond(w.bytes, w.arrival, configs[0]!, replySlots[0]);
      if (o.kind === 'reply') tx.prepare(0, o.bytes.length, ipv4ToNumber(o.to.address), o.to.port);
      if (!log.add(0, w.arrival.via, outcomeCode(o), o.kind !== 'malformed' && o.client !== undefined, 0, 0, w.bytes)) log.take();
    }
  }
  log.take();
  post({ type: 'ready' });
  for (;;) {
    poller.wait(log.empty ? -1 : Math.max(0, Math.ceil(flushAt - performance.now())));
    if (poller.ready(0) && control()) break;
    for (let k = 0; k < init.sockets.length; k++) {
      if (!poller.ready(k + 1)) continue;
      try {
        serve(init.sockets[k]!);
      } catch (err) {
        // A socket error (recvmmsg reports and clears it): the main thread logs it; the loop goes on.
        post({ type: 'socket-error', iface: init.sockets[k]!.iface, message: (err as Error).message });
      }
    }
    if (!log.empty && performance.now() >= flushAt) flush();
  }
  flush();
}

run((workerData as { data: WorkerInit }).data);
