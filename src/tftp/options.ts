// Option negotiation for a read request (RFC 2347, 2348, 2349, 7440). Pure.

export interface Limits {
  maxBlksize: number;
  maxWindowsize: number;
  /** Retransmission timeout when the client names none. */
  retryTimeoutMs: number;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /**
   * The OACK to send, in the order the client asked: only options that were requested and accepted, because
   * firmware rejects anything unexpected. Empty: no OACK, the first DATA is the answer (RFC 2347 §"Negotiation").
   */
  oack: [string, string][];
}

const DECIMAL = /^\d{1,10}$/;

function int(v: string): number | undefined {
  return DECIMAL.test(v) ? Number(v) : undefined;
}

/**
 * Out-of-range or unparsable values are left out of the OACK rather than refused with ERROR 8: the transfer
 * then runs with the default for that option, which every client must accept. Unknown options are ignored.
 */
export function negotiate(requested: ReadonlyMap<string, string>, fileSize: number, limits: Limits): Negotiated {
  const out: Negotiated = { blksize: 512, windowsize: 1, timeoutMs: limits.retryTimeoutMs, oack: [] };
  for (const [name, value] of requested) {
    const n = int(value);
    switch (name) {
      case 'blksize':
        if (n !== undefined && n >= 8 && n <= 65464) {
          out.blksize = Math.min(n, limits.maxBlksize);
          out.oack.push([name, String(out.blksize)]);
        }
        break;
      case 'tsize':
        // In a read request the client sends 0 and learns the size; anything else (atftp's "enable") is ignored.
        if (n === 0) out.oack.push([name, String(fileSize)]);
        break;
      case 'timeout':
        // RFC 2349: the server accepts the value exactly or not at all.
        if (n !== undefined && n >= 1 && n <= 255) {
          out.timeoutMs = n * 1000;
          out.oack.push([name, String(n)]);
        }
        break;
      case 'windowsize':
        if (n !== undefined && n >= 1 && n <= 65535) {
          out.windowsize = Math.min(n, limits.maxWindowsize);
          out.oack.push([name, String(out.windowsize)]);
        }
        break;
    }
  }
  return out;
}
