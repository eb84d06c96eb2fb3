import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bootAnswer, parseOption43, type AnswerConfig } from '../../src/dhcp/answer.ts';
import { classify, type Client } from '../../src/dhcp/classify.ts';
import { decode, decodeSubOptions, type DhcpPacket } from '../../src/dhcp/codec.ts';
import { respond, type RespondConfig } from '../../src/dhcp/respond.ts';
import { dhcpSettings } from '../../src/dhcp/settings.ts';
import { biosPxe, ipxeBios, ipxeEfi, opt, ovmfBootServerRequest, ovmfHttp, ovmfPxe, packet, UUID_WIRE, type Header } from './dhcp-fixtures.ts';

const SERVER = '192.0.2.10';
const option43 = parseOption43(dhcpSettings.shape.option43.default);
const cfg: AnswerConfig = { server: SERVER, httpPort: 8080, binaries: { bios: 'undionly.kpxe', x86_64: 'ipxe.efi' }, option43 };

function client(options: number[]): Client {
  const d = decode(packet(options));
  assert.ok(d.ok);
  const c = classify(d.packet);
  assert.ok(c.ok);
  return c.client;
}

const base = (arch: number, vc = 'PXEClient') => [...opt(53, [1]), ...opt(60, [...Buffer.from(vc)]), ...opt(93, [0, arch]), 255];

describe('dhcp boot answer table', () => {
  const rows: [string, number[], Partial<AnswerConfig>, { file: string; vc: string; has43: boolean } | string][] = [
    ['BIOS PXE ROM → TFTP undionly.kpxe + 43', biosPxe(), {}, { file: 'undionly.kpxe', vc: 'PXEClient', has43: true }],
    ['UEFI x64 PXE ROM → TFTP ipxe.efi, no 43', ovmfPxe(), {}, { file: 'ipxe.efi', vc: 'PXEClient', has43: false }],
    ['UEFI x64 PXE ROM with snponly.efi selected', ovmfPxe(), { binaries: { bios: 'undionly.kpxe', x86_64: 'snponly.efi' } }, { file: 'snponly.efi', vc: 'PXEClient', has43: false }],
    ['UEFI HTTP Boot → IP-literal URL, HTTPClient', ovmfHttp(), {}, { file: 'http://192.0.2.10:8080/ipxe.efi', vc: 'HTTPClient', has43: false }],
    ['iPXE EFI → script URL', ipxeEfi(), {}, { file: 'http://192.0.2.10:8080/boot.ipxe', vc: 'PXEClient', has43: false }],
    ['iPXE BIOS → script URL, no 43 even though BIOS has one', ipxeBios(), {}, { file: 'http://192.0.2.10:8080/boot.ipxe', vc: 'PXEClient', has43: false }],
    ['arm64 PXE without a configured binary → no answer', base(11), {}, 'no-binary'],
    ['arm64 PXE with a binary', base(11), { binaries: { arm64: 'snp-arm64.efi' } }, { file: 'snp-arm64.efi', vc: 'PXEClient', has43: false }],
    ['arm64 HTTP with a binary', base(19, 'HTTPClient'), { binaries: { arm64: 'snp-arm64.efi' } }, { file: 'http://192.0.2.10:8080/snp-arm64.efi', vc: 'HTTPClient', has43: false }],
    ['arm64 43 configured', base(11), { binaries: { arm64: 'a.efi' }, option43: { arm64: [[6, Buffer.from([8])]] } }, { file: 'a.efi', vc: 'PXEClient', has43: true }],
    ['IA32 UEFI (6) → unsupported', base(6), {}, 'unsupported-arch'],
    ['RISC-V 64 (27) → unsupported', base(27), {}, 'unsupported-arch'],
  ];
  for (const [name, options, over, want] of rows) {
    it(name, () => {
      const r = bootAnswer(client(options), { ...cfg, ...over });
      if (typeof want === 'string') {
        assert.equal(r.ok, false);
        if (!r.ok) assert.equal(r.reason, want);
        return;
      }
      if (!r.ok) assert.fail(r.reason);
      assert.equal(r.answer.file, want.file);
      assert.equal(r.answer.vendorClass, want.vc);
      assert.equal(r.answer.option43.length > 0, want.has43);
    });
  }
});

const rcfg = (over: Partial<RespondConfig> = {}): RespondConfig => ({ answer: cfg, relayAllowed: (ip) => ip === '10.9.0.1', rejected: () => false, relayPort: 67, ...over });

function reply(options: number[], h: Header = {}, via: 'dhcp' | 'proxy' = 'dhcp', over: Partial<RespondConfig> = {}) {
  const out = respond(packet(options, h), { via, from: { address: '10.0.0.50', port: via === 'proxy' ? 4011 : 68 } }, rcfg(over));
  if (out.kind !== 'reply') assert.fail(`no reply: ${out.kind} ${'reason' in out ? out.reason : ''}`);
  const d = decode(out.bytes);
  assert.ok(d.ok, 'our reply decodes');
  return { out, p: d.packet };
}

function assertProxyReply(p: DhcpPacket, type: number, file: string, vc: string): void {
  assert.equal(p.op, 2);
  assert.equal(p.xid, 0xdeadbeef);
  assert.equal(p.yiaddr, '0.0.0.0');
  assert.equal(p.ciaddr, '0.0.0.0');
  assert.equal(p.siaddr, SERVER);
  assert.equal(p.sname, SERVER);
  assert.equal(p.file, file);
  assert.deepEqual([...p.options.get(53)!], [type]);
  assert.deepEqual([...p.options.get(54)!], [192, 0, 2, 10]);
  assert.equal(p.options.get(60)!.toString(), vc);
  assert.equal(p.options.get(66)!.toString(), SERVER);
  assert.equal(p.options.get(67)!.toString(), file);
  assert.deepEqual([...p.options.get(97)!], [0, ...UUID_WIRE]);
}

describe('dhcp replies', () => {
  it('OVMF PXE DISCOVER → broadcast OFFER with every field a PXE client needs', () => {
    const { out, p } = reply(ovmfPxe());
    assert.deepEqual(out.to, { address: '255.255.255.255', port: 68 });
    assertProxyReply(p, 2, 'ipxe.efi', 'PXEClient');
    assert.equal(p.flags & 0x8000, 0x8000);
    assert.equal(p.options.has(43), false);
    assert.ok(out.bytes.length >= 300 && out.bytes.length <= 1472);
  });

  it('BIOS PXE ROM → OFFER with 43 = {6: 08, 10: 00 "PXE", END}', () => {
    const { p } = reply(biosPxe());
    assertProxyReply(p, 2, 'undionly.kpxe', 'PXEClient');
    assert.equal(p.options.get(43)!.toString('hex'), '0601080a0400505845ff');
  });

  it('OVMF HTTP Boot → OFFER with HTTPClient and the URL in file and 67', () => {
    const { p } = reply(ovmfHttp());
    assertProxyReply(p, 2, 'http://192.0.2.10:8080/ipxe.efi', 'HTTPClient');
  });

  it('iPXE → OFFER with siaddr and the script URL (iPXE needs both to skip 4011)', () => {
    const { p } = reply(ipxeEfi());
    assertProxyReply(p, 2, 'http://192.0.2.10:8080/boot.ipxe', 'PXEClient');
    assert.equal(p.options.has(43), false);
  });

  it('4011 boot-server REQUEST → ACK to the source ip:port, echoing 43.71', () => {
    const { out, p } = reply(ovmfBootServerRequest(), { ciaddr: [10, 0, 0, 50] }, 'proxy');
    assert.deepEqual(out.to, { address: '10.0.0.50', port: 4011 });
    assertProxyReply(p, 5, 'ipxe.efi', 'PXEClient');
    assert.deepEqual([...decodeSubOptions(p.options.get(43)!)!.get(71)!], [0, 0, 0, 0]);
  });

  it('relayed DISCOVER from an allowed giaddr → unicast to giaddr:67, option 82 echoed last', () => {
    const o82 = opt(82, [1, 4, ...Buffer.from('eth9'), 2, 2, 0xab, 0xcd]);
    const { out, p } = reply([...ovmfPxe().slice(0, -1), ...o82, 255], { giaddr: [10, 9, 0, 1] });
    assert.deepEqual(out.to, { address: '10.9.0.1', port: 67 });
    assert.equal(p.giaddr, '10.9.0.1');
    assert.deepEqual([...p.options.get(82)!], o82.slice(2));
    assert.equal([...p.options.keys()].at(-1), 82);
  });

  it('stays silent: foreign giaddr, rejected machine, lease REQUEST on 67, DISCOVER on 4011, non-PXE', () => {
    const silent = (options: number[], h: Header, via: 'dhcp' | 'proxy', over: Partial<RespondConfig> = {}) => {
      const out = respond(packet(options, h), { via, from: { address: '10.0.0.50', port: 68 } }, rcfg(over));
      return out.kind === 'reply' ? 'reply' : out.reason;
    };
    assert.equal(silent(ovmfPxe(), { giaddr: [203, 0, 113, 7] }, 'dhcp'), 'relay-not-allowed');
    assert.equal(silent(ovmfPxe(), {}, 'dhcp', { rejected: (c) => c.mac === '52:54:00:12:34:56' }), 'rejected');
    assert.equal(silent(ovmfPxe(3), {}, 'dhcp'), 'lease-request');
    assert.equal(silent(ovmfPxe(1), {}, 'proxy'), 'message-type');
    assert.equal(silent([...opt(53, [1]), 255], {}, 'dhcp'), 'not-pxe');
    assert.equal(silent([], {}, 'dhcp'), 'no-end');
  });

  it('respects a smaller option 57 (576) and never exceeds it', () => {
    const big43 = { x86_64: [[1, Buffer.alloc(250)], [2, Buffer.alloc(250)]] as [number, Buffer][] };
    const options = [...opt(53, [1]), ...opt(57, [0x02, 0x40]), ...opt(60, [...Buffer.from('PXEClient')]), ...opt(93, [0, 7]), 255];
    const out = respond(packet(options), { via: 'dhcp', from: { address: '0.0.0.0', port: 68 } }, rcfg({ answer: { ...cfg, option43: big43 } }));
    assert.equal(out.kind === 'reply' ? 'reply' : out.reason, 'too-large');
  });
});
