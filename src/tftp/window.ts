// The sending side of one read transfer as a pure state machine (RFC 1350, RFC 7440). Blocks are numbered
// absolutely from 1 (the OACK, when sent, is block 0); the wire carries the low 16 bits, so 65535 wraps to 0.

export type Step =
  /** Send blocks from..to (absolute numbers; 0..0 is the OACK) and wait for an ACK. A range, not a list: no allocation per block. */
  | { do: 'send'; from: number; to: number }
  /** Nothing to send: a duplicate, stale or future ACK. Never a resend (Sorcerer's Apprentice, RFC 1123). */
  | { do: 'ignore'; why: 'duplicate' | 'unexpected' }
  | { do: 'done' }
  | { do: 'give-up' };

export class Window {
  /** Highest absolute block the client has acknowledged; -1 while an OACK awaits its ACK 0. */
  private acked: number;
  /** Highest absolute block sent. */
  private sent: number;
  private tries = 0;
  /** The final block, always shorter than blksize (0 bytes when the size is an exact multiple). */
  readonly last: number;

  constructor(
    size: number,
    readonly blksize: number,
    readonly windowsize: number,
    withOack: boolean,
    private readonly retries: number,
  ) {
    this.last = Math.floor(size / blksize) + 1;
    this.acked = withOack ? -1 : 0;
    this.sent = this.acked;
  }

  /** The first thing to send: the OACK, or the first window of DATA. */
  start(): Step {
    if (this.acked < 0) {
      this.sent = 0;
      return { do: 'send', from: 0, to: 0 };
    }
    return this.next();
  }

  ack(wire: number): Step {
    // The only ACKs that make sense refer to a block in (acked, sent]; map the 16-bit number into that range.
    const base = Math.max(this.acked, 0);
    const k = base + ((wire - base) & 0xffff);
    if (k === this.acked) return { do: 'ignore', why: 'duplicate' };
    if (k > this.sent) return { do: 'ignore', why: 'unexpected' };
    this.acked = k;
    this.tries = 0;
    if (k >= this.last) return { do: 'done' };
    // An ACK inside the window means the client lost what followed: the next window starts after it (RFC 7440).
    return this.next();
  }

  /** No ACK in time: resend what is unacknowledged, a bounded number of times. */
  timeout(): Step {
    if (this.tries >= this.retries) return { do: 'give-up' };
    this.tries++;
    if (this.acked < 0) return { do: 'send', from: 0, to: 0 };
    return { do: 'send', from: this.acked + 1, to: this.sent };
  }

  /** Byte range of an absolute DATA block. */
  range(block: number): { offset: number; length: number } {
    return { offset: (block - 1) * this.blksize, length: this.blksize };
  }

  private next(): Step {
    const from = this.acked + 1;
    const to = Math.min(this.acked + this.windowsize, this.last);
    this.sent = to;
    return { do: 'send', from, to };
  }
}
