import type { Context } from '../context.ts';
import type { Service, ServiceHealth } from '../service.ts';
import { StartupError } from '../errors.ts';
import { EventDecoder, PROTO_DIR } from './decode.ts';
import { Feedback, MalformedRequest } from './feedback.ts';
import { KmsgReceiver } from './kmsg.ts';
import { EventSinkServer } from './sink.ts';
import type { FeedbackPorts } from './talos-docs.ts';
import { FeedbackStore } from './store.ts';

export class EventsService implements Service {
  readonly name = 'events';
  readonly feedback: Feedback;
  readonly sink: EventSinkServer;
  readonly kmsg: KmsgReceiver;
  private state: ServiceHealth = { state: 'stopped' };

  constructor(private readonly ctx: Context) {
    const { grpc, kmsg } = ctx.settings;
    const store = new FeedbackStore(ctx.db, ctx.writer, { events: grpc.keepPerMachine, kmsg: kmsg.keepPerMachine });
    this.feedback = new Feedback(ctx, store, loadDecoder());
    this.sink = new EventSinkServer(grpc, (ip, bytes) => {
      try {
        this.feedback.publish(ip, bytes);
        return { ok: true };
      } catch (err) {
        if (err instanceof MalformedRequest) return { ok: false, message: err.message };
        throw err;
      }
    }, ctx.log);
    // Events waiting for the main thread are recorded before each machine request, not only at the end of a turn.
    ctx.http.app.addHook('onRequest', (_req, _reply, done) => {
      this.sink.takeWaiting();
      done();
    });
    this.kmsg = new KmsgReceiver(kmsg, {
      line: (ip, proto, line) => this.feedback.kernelLine(ip, proto, line),
      dropped: (proto, reason) => this.feedback.kernelDropped(proto, reason),
    });
  }

  async start(): Promise<void> {
    this.state = { state: 'starting' };
    try {
      await this.sink.start();
      await this.kmsg.start();
    } catch (err) {
      await this.sink.stop();
      this.state = { state: 'failed', detail: (err as Error).message };
      throw err;
    }
    const { grpc, kmsg } = this.ctx.settings;
    this.state = {
      state: 'up',
      listening: { grpc: `${grpc.listen}:${this.sink.port}`, kmsgTcp: `${kmsg.listen}:${this.kmsg.tcpPort}`, kmsgUdp: `${kmsg.listen}:${this.kmsg.udpPort}` },
    };
  }

  async stop(): Promise<void> {
    this.state = { state: 'stopping' };
    await Promise.all([this.sink.stop(), this.kmsg.stop()]);
    this.state = { state: 'stopped' };
  }

  health(): ServiceHealth {
    // The sink's thread died and is being started again: Talos's calls fail meanwhile (it retries them).
    const problem = this.sink.problem;
    return problem && this.state.state === 'up' ? { ...this.state, state: 'failed', detail: `Talos event sink: ${problem}` } : this.state;
  }

  /** Where Talos should report to: the bound ports, known once started. */
  get ports(): FeedbackPorts {
    return { grpc: this.sink.port, kmsg: this.kmsg.tcpPort };
  }
}

function loadDecoder(): EventDecoder {
  try {
    return new EventDecoder();
  } catch (err) {
    throw new StartupError(`events: cannot load the protobuf definitions in ${PROTO_DIR}: ${(err as Error).message}`, 'The proto/ directory ships with heph; reinstall it.', { cause: err });
  }
}

/** The Talos event sink (gRPC) and kernel-log receiver (TCP + UDP) as one service. */
export function createEventsService(ctx: Context): EventsService {
  return new EventsService(ctx);
}
