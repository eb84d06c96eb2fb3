import { readFileSync } from 'node:fs';
import { inProcessHeph } from './test/helpers/heph.ts';
import { tftpOf } from './test/integration/tftp-raw.ts';
const h = await inProcessHeph({ http: { listen: '127.0.0.1', port: 18089 }, tftp: { enabled: true, port: 16969, addresses: ['127.0.0.1'], maxTransfersPerClient: 64 } } as any);
tftpOf(h.daemon).files.register('64m.bin', '/tmp/tftpwork/64m.bin');
tftpOf(h.daemon).files.register('mem.bin', readFileSync('/tmp/tftpwork/64m.bin'));
console.log('pid', process.pid);
setTimeout(() => h.stop(), 300000);
