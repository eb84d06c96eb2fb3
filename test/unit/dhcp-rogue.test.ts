// The foreign-offer decision (src/dhcp/rogue.ts): which replies on UDP 68 betray another PXE server.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { encode, MessageType, Opt, type DhcpPacket } from '../../src/dhcp/codec.ts';
import { foreignPxeOffer } from '../../src/dhcp/rogue.ts';

const own = new Set(['192.0.2.10']);
const chaddr = Buffer.concat([Buffer.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]), Buffer.alloc(10)]);

function reply(over: Partial<DhcpPacket> & { opts?: [number, Buffer][] }): Buffer {
  const { opts = [], ...head } = over;
  return encode({ op: 2, htype: 1, hlen: 6, hops: 0, xid: 1, secs: 0, flags: 0x8000, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '', options: new Map(opts), ...head });
}
const type = (t: number): [number, Buffer] => [Opt.MESSAGE_TYPE, Buffer.from([t])];
const sid = (ip: string): [number, Buffer] => [Opt.SERVER_ID, Buffer.from(ip.split('.').map(Number))];
const pxe: [number, Buffer] = [Opt.VENDOR_CLASS, Buffer.from('PXEClient')];

it('a proxy OFFER from another server is reported with its server id, file and client', () => {
  const f = foreignPxeOffer(reply({ siaddr: '192.0.2.99', file: 'rogue.efi', opts: [type(MessageType.OFFER), sid('192.0.2.99'), pxe] }), '192.0.2.99', own);
  assert.deepEqual(f, { server: '192.0.2.99', kind: 'proxy', type: 'offer', file: 'rogue.efi', mac: '52:54:00:12:34:56' });
});

it('a DHCP server that hands out an address and a boot file is reported as kind dhcp', () => {
  const f = foreignPxeOffer(reply({ yiaddr: '192.0.2.77', opts: [type(MessageType.ACK), sid('192.0.2.1'), [Opt.BOOTFILE, Buffer.from('pxelinux.0\0')]] }), '192.0.2.1', own);
  assert.equal(f?.kind, 'dhcp');
  assert.equal(f?.type, 'ack');
  assert.equal(f?.file, 'pxelinux.0');
});

it("heph's own offers, plain DHCP offers, requests and junk are not reported", () => {
  assert.equal(foreignPxeOffer(reply({ file: 'ipxe.efi', opts: [type(MessageType.OFFER), sid('192.0.2.10'), pxe] }), '192.0.2.10', own), undefined);
  // Own address as the source even when the server id names another (multi-homed heph with advertiseAddress).
  assert.equal(foreignPxeOffer(reply({ file: 'ipxe.efi', opts: [type(MessageType.OFFER), sid('198.51.100.1'), pxe] }), '192.0.2.10', own), undefined);
  assert.equal(foreignPxeOffer(reply({ yiaddr: '192.0.2.77', opts: [type(MessageType.OFFER), sid('192.0.2.1')] }), '192.0.2.1', own), undefined);
  assert.equal(foreignPxeOffer(reply({ op: 1, opts: [type(MessageType.DISCOVER), pxe] }), '0.0.0.0', own), undefined);
  assert.equal(foreignPxeOffer(reply({ opts: [type(MessageType.NAK), sid('192.0.2.99'), pxe] }), '192.0.2.99', own), undefined);
  assert.equal(foreignPxeOffer(Buffer.from('not dhcp'), '192.0.2.99', own), undefined);
});

it('without option 54 the server is the header siaddr, else the sender', () => {
  assert.equal(foreignPxeOffer(reply({ siaddr: '192.0.2.50', opts: [type(MessageType.OFFER), pxe] }), '192.0.2.51', own)?.server, '192.0.2.50');
  assert.equal(foreignPxeOffer(reply({ opts: [type(MessageType.OFFER), [Opt.VENDOR, Buffer.from([6, 1, 8, 255])]] }), '192.0.2.51', own)?.server, '192.0.2.51');
});
