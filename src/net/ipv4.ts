// Dotted quads ↔ 32-bit numbers without split() or intermediate strings: the DHCP data plane converts an
// address or two for every datagram. Inputs are well-formed (settings validated at start, or bytes read off a
// header); anything else gives a meaningless number, never a throw.

export function ipv4ToNumber(ip: string): number {
  let n = 0;
  let part = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      n = n * 256 + part;
      part = 0;
    } else part = part * 10 + (c - 48);
  }
  return (n * 256 + part) >>> 0;
}

export function ipv4FromNumber(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
