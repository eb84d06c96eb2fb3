/**
 * Polls `fn` until it returns something other than undefined, then returns that; throws naming `what` after
 * `timeoutMs`. For effects that land after the peer is done (a worker's message, a write-behind batch), where
 * asserting at once would race.
 */
export async function eventually<T>(fn: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 5000, everyMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
