// How many ERROR replies one source address may get from the request port: a token bucket per address. Why:
// a refusal is sent to whatever source a request claims, so with a spoofed source every small request would buy
// a larger reply aimed at someone else (security.md T6). A real client makes a handful of requests per boot; a
// flood gets its first burst answered and the rest dropped (still counted). Pure: the caller passes the time.

export class ReplyLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    /** Sources remembered at most; beyond it, full buckets are forgotten first, then all (memory stays bounded). */
    private readonly maxSources = 4096,
  ) {}

  /** True when `source` may be answered now (and uses up one token). */
  take(source: string, nowMs: number): boolean {
    let b = this.buckets.get(source);
    if (!b) {
      if (this.buckets.size >= this.maxSources) this.forget(nowMs);
      b = { tokens: this.burst, at: nowMs };
      this.buckets.set(source, b);
    }
    b.tokens = this.level(b, nowMs);
    b.at = nowMs;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private level(b: { tokens: number; at: number }, nowMs: number): number {
    return Math.min(this.burst, b.tokens + (Math.max(0, nowMs - b.at) / 1000) * this.perSecond);
  }

  private forget(nowMs: number): void {
    for (const [k, b] of this.buckets) if (this.level(b, nowMs) >= this.burst) this.buckets.delete(k);
    if (this.buckets.size >= this.maxSources) this.buckets.clear();
  }
}
