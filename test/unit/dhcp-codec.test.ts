import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decode, decodeRelayAgent, decodeSubOptions, encode, encodeSubOptions, Opt } from '../../src/dhcp/codec.ts';
import { biosPxe, ipxeBios, ipxeEfi, MAC, opt, ovmfBootServerRequest, ovmfHttp, ovmfPxe, packet, UUID_WIRE } from './dhcp-fixtures.ts';

function ok(buf: Buffer) {
  const d = decode(buf);
  if (!d.ok) assert.fail(`decode failed: ${d.error.reason}: ${d.error.detail}`);
  return d.packet;
}

describe('dhcp codec: firmware-shaped fixtures', () => {
  const fixtures = { 'OVMF PXE': ovmfPxe(), 'OVMF HTTP Boot': ovmfHttp(), 'iPXE EFI': ipxeEfi(), 'iPXE BIOS': ipxeBios(), 'BIOS PXE ROM': biosPxe(), 'EDK2 4011 REQUEST': ovmfBootServerRequest() };
  for (const [name, options] of Object.entries(fixtures)) {
    it(`${name}: decode → encode gives the same bytes, and decodes to the same packet`, () => {
      const bytes = packet(options, { flags: 0x8000 });
      const p = ok(bytes);
      assert.equal(p.op, 1);
      assert.equal(p.xid, 0xdeadbeef);
      assert.equal(p.flags, 0x8000);
      assert.deepEqual([...p.chaddr.subarray(0, 6)], MAC);
      assert.deepEqual(encode(p), bytes);
      assert.deepEqual(ok(encode(p)), p);
    });
  }

  it('reads the options iPXE and EDK2 send, raw', () => {
    const p = ok(packet(ipxeEfi()));
    assert.deepEqual([...p.options.keys()], [53, 57, 93, 94, 60, 77, 55, 175, 61, 97]);
    assert.equal(p.options.get(Opt.USER_CLASS)!.toString(), 'iPXE');
    assert.deepEqual([...p.options.get(Opt.CLIENT_UUID)!], [0, ...UUID_WIRE]);
    assert.deepEqual([...p.options.get(Opt.CLIENT_ID)!], [1, ...MAC]);
    const enc = decodeSubOptions(p.options.get(Opt.IPXE_ENCAP)!)!;
    assert.deepEqual([...enc.get(0xeb)!], [1, 0, 0]);
    assert.deepEqual([...enc.get(0x24)!], [1]);
    const item = decodeSubOptions(ok(packet(ovmfBootServerRequest())).options.get(Opt.VENDOR)!)!;
    assert.deepEqual([...item.get(71)!], [0, 0, 0, 0]);
  });
});

describe('dhcp codec: RFC 3396 and option overload', () => {
  it('joins a split option, in options-field, file, sname order, and splits long values when encoding', () => {
    const a = Array.from({ length: 255 }, (_, i) => i & 0xff);
    const b = [1, 2, 3];
    const bytes = packet([...opt(53, [1]), ...opt(43, a), ...opt(43, b), 255]);
    const p = ok(bytes);
    assert.deepEqual([...p.options.get(43)!], [...a, ...b]);
    const re = encode(p);
    assert.deepEqual(re, bytes, 'a 258-byte option is written as 255 + 3');
  });

  it('reads options from file (1), sname (2) and both (3) when option 52 says so', () => {
    const fileOpts = [...opt(60, [...Buffer.from('PXECli')]), 255];
    const snameOpts = [...opt(60, [...Buffer.from('ent')]), ...opt(93, [0, 7]), 255];
    for (const [v, want60, has93] of [
      [1, 'PXECli', false],
      [2, 'ent', true],
      [3, 'PXEClient', true],
    ] as const) {
      const p = ok(packet([...opt(53, [1]), ...opt(52, [v]), 255], { file: fileOpts, sname: snameOpts }));
      assert.equal(p.options.get(60)!.toString(), want60, `overload ${v}`);
      assert.equal(p.options.has(93), has93);
      // A field that does not carry options is text (here, the option bytes read as latin1).
      assert.equal(p.file, v & 1 ? '' : '<\x06PXECli\xff');
      if (v & 2) assert.equal(p.sname, '');
    }
    const plain = ok(packet([...opt(53, [1]), 255], { file: [...Buffer.from('undionly.kpxe')], sname: [...Buffer.from('boot')] }));
    assert.equal(plain.file, 'undionly.kpxe');
    assert.equal(plain.sname, 'boot');
  });

  it('encodes the sub-option spaces (43 with END, 82 without)', () => {
    const v = encodeSubOptions([[6, Buffer.from([8])], [10, Buffer.from('\0PXE', 'latin1')]]);
    assert.deepEqual([...v], [6, 1, 8, 10, 4, 0, 0x50, 0x58, 0x45, 255]);
    assert.deepEqual([...decodeSubOptions(v)!.entries()].map(([k, b]) => [k, [...b]]), [[6, [8]], [10, [0, 0x50, 0x58, 0x45]]]);
    const r82 = decodeRelayAgent(Buffer.from([1, 3, 0x65, 0x74, 0x68, 2, 2, 0xab, 0xcd]))!;
    assert.deepEqual(r82.map(([k, b]) => [k, b.toString('hex')]), [[1, '657468'], [2, 'abcd']]);
    assert.equal(decodeRelayAgent(Buffer.from([1, 9, 0])), undefined);
  });
});

describe('dhcp codec: malformed input (security.md (b) 2, 3, 4, 8)', () => {
  const cases: [string, Buffer, string | 'ok'][] = [
    ['0 bytes', Buffer.alloc(0), 'short'],
    ['1 byte', Buffer.from([1]), 'short'],
    ['239 bytes', Buffer.alloc(239), 'short'],
    ['240 bytes of zeros (no cookie)', Buffer.alloc(240), 'cookie'],
    ['cookie only, no options, no END', packet([], {}, false), 'no-end'],
    ['wrong magic cookie', (() => { const b = packet(ovmfPxe()); b[239] = 0x64; return b; })(), 'cookie'],
    ['no END option', packet(ovmfPxe().slice(0, -1), {}, false), 'no-end'],
    ['option 60 len 200 with 10 bytes left', packet([...opt(53, [1]), 60, 200, ...Buffer.from('PXEClient!')], {}, false), 'truncated-option'],
    ['length byte missing at the end', packet([...opt(53, [1]), 60], {}, false), 'truncated-option'],
    ['overload with a 2-byte value', packet([...opt(53, [1]), ...opt(52, [1, 1]), 255]), 'bad-overload'],
    ['overload 4', packet([...opt(53, [1]), ...opt(52, [4]), 255]), 'bad-overload'],
    ['overload 3 with garbage in file/sname', packet([...opt(53, [1]), ...opt(52, [3]), 255], { file: [60, 250, 1, 2], sname: [0xff] }), 'truncated-option'],
    ['overload 1 with a file field lacking END', packet([...opt(53, [1]), ...opt(52, [1]), 255], { file: Array(128).fill(0) }), 'no-end'],
    ['300 pad bytes then END', packet([...Array(300).fill(0), 255]), 'ok'],
    ['two option 53s (joined, RFC 3396)', packet([...opt(53, [1]), ...opt(53, [3]), 255]), 'ok'],
    ['zero-length option 53', packet([53, 0, 255]), 'ok'],
    ['200 options', packet([...Array.from({ length: 200 }, (_, i) => opt(200 + (i % 50), [i & 0xff])).flat(), 255]), 'ok'],
  ];
  for (const [name, buf, want] of cases) {
    it(`${name} → ${want === 'ok' ? 'decodes' : want}`, () => {
      const d = decode(buf);
      if (want === 'ok') assert.equal(d.ok, true);
      else {
        assert.equal(d.ok, false);
        if (!d.ok) assert.equal(d.error.reason, want);
      }
    });
  }

  it('joins two option 53s into one 2-byte value (classify then drops it)', () => {
    const d = decode(packet([...opt(53, [1]), ...opt(53, [3]), 255]));
    assert.ok(d.ok);
    assert.deepEqual([...d.packet.options.get(53)!], [1, 3]);
  });
});
