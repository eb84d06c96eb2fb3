import assert from 'node:assert/strict';
import { it } from 'node:test';
import { StartupError } from '../../src/errors.ts';
import { inProcessHeph } from '../helpers/heph.ts';

it('dhcp.enabled without network.interfaces refuses to start, saying what to set', async () => {
  await assert.rejects(
    () => inProcessHeph({ dhcp: { enabled: true } }),
    (err: unknown) => err instanceof StartupError && /network\.interfaces/.test(err.message) && /network\.interfaces/.test(err.hint ?? ''),
  );
});

it('dhcp disabled: /healthz lists it as disabled and no binary route exists', async () => {
  const h = await inProcessHeph();
  try {
    const health = (await (await fetch(`${h.url}/healthz`)).json()) as { services: Record<string, { state: string }> };
    assert.equal(health.services.dhcp?.state, 'disabled');
    assert.equal((await fetch(`${h.url}/ipxe.efi`)).status, 404);
  } finally {
    await h.stop();
  }
});
