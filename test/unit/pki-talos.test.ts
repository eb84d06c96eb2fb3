import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { loadOrCreateCA } from '../../src/pki/ca.ts';
import { talosTrustArg, trustedRootsDocument } from '../../src/pki/talos.ts';
import { tempDir } from '../helpers/heph.ts';

describe('talos.config.early carrying heph CA', () => {
  const tmp = tempDir('heph-pki-talos-');
  after(() => tmp.remove());

  it('is base64(zstd(TrustedRootsConfig)) that the zstd CLI decompresses back to the document', async (t) => {
    const ca = await loadOrCreateCA(join(tmp.path, 'data'));
    const arg = await talosTrustArg(ca.certPem);
    assert.match(arg, /^talos\.config\.early=[A-Za-z0-9+/]+={0,2}$/);
    const b64 = arg.slice('talos.config.early='.length);
    const z = Buffer.from(b64, 'base64');
    assert.equal(z.toString('base64'), b64, 'standard base64, as Go base64.StdEncoding decodes');
    const r = spawnSync('zstd', ['-d', '-q', '-c'], { input: z });
    assert.equal(r.status, 0, r.stderr?.toString());
    const yaml = r.stdout.toString();
    assert.equal(yaml, trustedRootsDocument(ca.certPem));
    const [doc] = parseAllDocuments(yaml).map((d) => d.toJS() as Record<string, string>);
    assert.deepEqual(Object.keys(doc!), ['apiVersion', 'kind', 'name', 'certificates']);
    assert.equal(doc!.kind, 'TrustedRootsConfig');
    assert.equal(doc!.apiVersion, 'v1alpha1');
    assert.equal(doc!.certificates, ca.certPem);
    t.diagnostic(`kernel argument length for heph's CA: ${arg.length} bytes`);
    // x86 Linux keeps 2048 bytes of command line; Talos's own arguments and talos.config take ~500.
    assert.ok(arg.length < 1500, `${arg.length} bytes leaves too little of the command line`);
    assert.match(await talosTrustArg(ca.certPem, 'talos.config.inline'), /^talos\.config\.inline=/);
  });

  it('refuses a document name Talos would not accept', () => {
    assert.throws(() => trustedRootsDocument('x', 'Bad Name'));
  });
});
