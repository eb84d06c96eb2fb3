import type { TalosEvent } from '../events/model.ts';
import type { MachineState } from '../inventory/machines.ts';

export interface Transition {
  state: MachineState;
  /** Why, in words an operator can act on; Talos's own message where it gave one. */
  reason: string;
}

// Talos reports its reboot at the end of a sequence as a failure whose message names the syscall
// ("… unix.Reboot(45584543)" for kexec, "unix.Reboot(1234567)" for a restart): protocols.md §2.5.
const REBOOT = /unix\.Reboot\(/;

/**
 * How one Talos event moves a machine through its lifecycle (protocols.md §2.5). Pure: returns the new state and
 * why, or undefined when the event changes nothing (most events only go on the timeline).
 *
 *   installing  the install phase starts (or Talos reports the INSTALLING stage)
 *   installed   the install sequence ends in its reboot, or the boot sequence starts after an install
 *   running     the boot sequence finishes (or Talos reports the RUNNING stage)
 *   ready       RUNNING and ready with every condition met, nodeReady included: the node joined Kubernetes
 *   failed      a config load error, or an install sequence that failed for another reason than its reboot
 */
export function transition(state: MachineState, e: TalosEvent): Transition | undefined {
  const to = (next: MachineState, reason: string): Transition | undefined => (next === state ? undefined : { state: next, reason });
  switch (e.type) {
    case 'phase':
      return e.phase === 'install' && e.action === 'START' ? to('installing', 'Talos started installing to disk') : undefined;
    case 'sequence': {
      if (e.error) {
        if (REBOOT.test(e.error.message)) {
          return e.sequence === 'install' ? to('installed', `install finished; Talos reboots into the installed system (${e.error.message})`) : undefined;
        }
        // LOCKED (another sequence held the lock) and CANCELED are not failures of the machine. Other sequences'
        // failures only go on the timeline: Talos retries them, and "failed" would make the boot decision
        // install over a machine that is installed.
        if (e.sequence !== 'install' || e.error.code !== 'FATAL') return undefined;
        return to('failed', `install failed: ${e.error.message}`);
      }
      if (e.sequence === 'boot' && e.action === 'START' && state === 'installing') return to('installed', 'the installed system is booting');
      if (e.sequence === 'boot' && e.action === 'STOP' && state !== 'ready') return to('running', 'Talos finished booting');
      return undefined;
    }
    case 'status': {
      if (e.stage === 'INSTALLING') return to('installing', 'Talos reports stage installing');
      if (e.stage !== 'RUNNING') return undefined;
      const joined = e.ready && !e.unmet.some((u) => u.name === 'nodeReady');
      if (joined) return to('ready', 'Talos is running and ready; the node is Ready in Kubernetes');
      const unmet = e.unmet.map((u) => (u.reason ? `${u.name}: ${u.reason}` : u.name)).join('; ');
      return to('running', unmet ? `Talos is running, not ready yet (${unmet})` : 'Talos is running');
    }
    case 'configLoadError':
      return to('failed', `Talos could not load its config: ${e.error}`);
    case 'task':
    case 'service':
    case 'address':
    case 'restart':
      return undefined;
  }
}
