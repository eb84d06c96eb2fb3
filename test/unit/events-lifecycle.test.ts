import assert from 'node:assert/strict';
import { test } from 'node:test';
import { transition } from '../../src/boot/lifecycle.ts';
import type { TalosEvent } from '../../src/events/model.ts';
import type { MachineState } from '../../src/inventory/machines.ts';

const seq = (sequence: string, action: string, error?: { code: string; message: string }): TalosEvent => ({ type: 'sequence', sequence, action, ...(error ? { error } : {}) });
const phase = (p: string, action: string): TalosEvent => ({ type: 'phase', phase: p, action });
const status = (stage: string, ready: boolean, unmet: string[] = []): TalosEvent => ({ type: 'status', stage, ready, unmet: unmet.map((name) => ({ name, reason: `${name} pending` })) });
const REBOOT = 'error running phase 8 in install sequence: task 1/1: failed, unix.Reboot(45584543)';

// [from, event, expected new state (undefined: no change), reason must contain]
const TABLE: [MachineState, TalosEvent, MachineState | undefined, string?][] = [
  ['config-served', phase('install', 'START'), 'installing'],
  ['ready', phase('install', 'START'), 'installing'], // a reprovision installs again
  ['installing', phase('install', 'START'), undefined],
  ['config-served', phase('install', 'STOP'), undefined],
  ['config-served', phase('kexec', 'START'), undefined],
  ['config-served', status('INSTALLING', false), 'installing'],
  ['installing', seq('install', 'NOOP', { code: 'FATAL', message: REBOOT }), 'installed', 'unix.Reboot(45584543)'],
  ['installing', seq('install', 'NOOP', { code: 'FATAL', message: 'sequence failed: unix.Reboot(1234567)' }), 'installed'],
  ['installing', seq('install', 'NOOP', { code: 'FATAL', message: 'failed to install bootloader: disk /dev/sda not found' }), 'failed', 'install failed: failed to install bootloader: disk /dev/sda not found'],
  ['installing', seq('install', 'NOOP', { code: 'LOCKED', message: 'locked' }), undefined],
  ['installing', seq('install', 'NOOP', { code: 'CANCELED', message: 'context canceled' }), undefined],
  ['running', seq('reboot', 'NOOP', { code: 'FATAL', message: 'unix.Reboot(1234567)' }), undefined], // an operator's reboot
  ['running', seq('boot', 'NOOP', { code: 'FATAL', message: 'task 2/3: failed, mount failed' }), undefined], // Talos retries; timeline only
  ['installing', seq('install', 'STOP'), undefined],
  ['installing', seq('boot', 'START'), 'installed', 'installed system'],
  ['installed', seq('boot', 'START'), undefined],
  ['config-served', seq('boot', 'START'), undefined], // booting is not proof of an install
  ['installed', seq('boot', 'STOP'), 'running'],
  ['ready', seq('boot', 'STOP'), undefined],
  ['installed', status('RUNNING', false, ['nodeReady']), 'running', 'nodeReady: nodeReady pending'],
  ['running', status('RUNNING', false, ['nodeReady']), undefined],
  ['running', status('RUNNING', true), 'ready', 'Ready in Kubernetes'],
  ['installed', status('RUNNING', true), 'ready'],
  ['running', status('RUNNING', true, ['nodeReady']), undefined], // ready with nodeReady unmet is not joined
  ['running', status('BOOTING', true), undefined],
  ['running', status('MAINTENANCE', true), undefined],
  ['ready', status('RUNNING', false, ['services']), 'running', 'services'],
  ['ready', status('REBOOTING', false), undefined],
  ['config-served', { type: 'configLoadError', error: 'failed to load config: 404 Not Found' }, 'failed', 'Talos could not load its config: failed to load config: 404 Not Found'],
  ['failed', { type: 'configLoadError', error: 'again' }, undefined],
  ['failed', phase('install', 'START'), 'installing'], // Talos retried and got on
  ['running', { type: 'task', task: 'install', action: 'START' }, undefined],
  ['running', { type: 'service', service: 'kubelet', action: 'FAILED', message: 'x', healthy: false }, undefined],
  ['running', { type: 'address', hostname: 'a', addresses: ['10.0.0.2/24'] }, undefined],
  ['running', { type: 'restart', cmd: 0x45584543 }, undefined],
];

for (const [from, event, to, reason] of TABLE) {
  test(`lifecycle: ${from} + ${JSON.stringify(event)} → ${to ?? 'no change'}`, () => {
    const t = transition(from, event);
    if (to === undefined) return assert.equal(t, undefined);
    assert.ok(t, 'expected a transition');
    assert.equal(t.state, to);
    assert.ok(t.reason.length > 0);
    if (reason) assert.ok(t.reason.includes(reason), `reason "${t.reason}" lacks "${reason}"`);
  });
}
