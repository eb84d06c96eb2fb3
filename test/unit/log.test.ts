import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger, forMachine } from '../../src/log.ts';

function capture(): { stream: Writable; lines: () => string[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { stream, lines: () => chunks.join('').split('\n').filter(Boolean) };
}

describe('logging', () => {
  it('writes JSON lines that carry the machine fields and leaves unknown ones out', () => {
    const out = capture();
    const log = createLogger({ log: { level: 'info', format: 'json' } }, out.stream);
    forMachine(log, { mac: 'aa:bb:cc:dd:ee:ff', uuid: undefined, ip: '192.0.2.7', machine: 'm-abc' }).info({ decision: 'hold' }, 'script served');
    const line = JSON.parse(out.lines()[0]!) as Record<string, unknown>;
    assert.equal(line.msg, 'script served');
    assert.equal(line.level, 'info');
    assert.equal(line.mac, 'aa:bb:cc:dd:ee:ff');
    assert.equal(line.ip, '192.0.2.7');
    assert.equal(line.machine, 'm-abc');
    assert.equal('uuid' in line, false);
    assert.match(String(line.time), /^\d{4}-\d\d-\d\dT/);
  });

  it('redacts secrets that reach a log call by accident', () => {
    const out = capture();
    const log = createLogger({ log: { level: 'info', format: 'json' } }, out.stream);
    log.info({ token: 'tok-SECRET', req: { headers: { authorization: 'Bearer SECRET' } }, body: 'machine: {ca: {key: SECRET}}' }, 'oops');
    const text = out.lines().join('\n');
    assert.doesNotMatch(text, /SECRET/);
    assert.match(text, /\[redacted\]/);
  });

  it('writes human-readable lines when asked', () => {
    const out = capture();
    const log = createLogger({ log: { level: 'info', format: 'pretty' } }, out.stream);
    log.info({ mac: 'aa:bb:cc:dd:ee:ff' }, 'hello there');
    const text = out.lines().join('\n');
    assert.match(text, /INFO.*hello there/);
    assert.match(text, /mac: "aa:bb:cc:dd:ee:ff"/);
    assert.throws(() => JSON.parse(out.lines()[0]!));
  });

  it('honours the level', () => {
    const out = capture();
    const log = createLogger({ log: { level: 'warn', format: 'json' } }, out.stream);
    log.info('quiet');
    log.warn('loud');
    assert.deepEqual(out.lines().map((l) => (JSON.parse(l) as { msg: string }).msg), ['loud']);
  });
});
