import type { Acceptance, MachineState } from '../inventory/machines.ts';

export type BootAction = 'install' | 'hold' | 'local' | 'maintenance';

export interface BootMachine {
  acceptance: Acceptance;
  state: MachineState;
  reprovision: boolean;
}

/** The profile the machine would get (null: none), and whether its kernel and initrd are imported and verified. */
export interface BootProfile {
  name: string;
  /** Undefined when the assets are ready; otherwise what is wrong, for the reason. */
  assetsProblem?: string | undefined;
  /** The winning selector asks for machines it matches to be accepted without an operator. */
  autoAccept: boolean;
}

export interface BootPolicy {
  unknownMachines: 'hold' | 'ignore' | 'discover-only';
}

export interface BootDecision {
  action: BootAction;
  reason: string;
  /** Install answers only: the config must wipe the install disk (operator asked for a reprovision). */
  wipe: boolean;
  /** The decision accepted the machine through a selector's auto-accept rule; the caller records it. */
  autoAccepted: boolean;
  at: number;
}

/** Talos is on the disk: such machines boot locally unless a reprovision was asked for. */
export const INSTALLED_STATES: readonly MachineState[] = ['installed', 'running', 'ready'];

/**
 * What a machine that just asked for a script gets. Pure: the inputs are logged with the result, so
 * "why did it boot that?" is answered from one log line.
 */
export function decideBoot(machine: BootMachine, profile: BootProfile | null, policy: BootPolicy, now: number): BootDecision {
  const d = (action: BootAction, reason: string, extra: Partial<Pick<BootDecision, 'wipe' | 'autoAccepted'>> = {}): BootDecision => ({
    action,
    reason,
    wipe: extra.wipe ?? false,
    autoAccepted: extra.autoAccepted ?? false,
    at: now,
  });
  if (machine.acceptance === 'rejected') return d('local', 'rejected by an operator: never provisioned');
  const autoAccepted = machine.acceptance === 'pending' && profile !== null && profile.autoAccept;
  if (machine.acceptance === 'pending' && !autoAccepted) {
    switch (policy.unknownMachines) {
      case 'ignore':
        return d('local', 'not accepted; policy ignores unknown machines');
      case 'discover-only':
        if (profile && !profile.assetsProblem) return d('maintenance', 'not accepted; policy boots unknown machines into maintenance mode (no config)');
        return d('hold', `not accepted; discover-only needs a profile with ready assets (${profile ? profile.assetsProblem : 'none matches'})`);
      case 'hold':
        return d('hold', 'waiting for an operator to accept it');
    }
  }
  if (!profile) return d('hold', 'accepted, but no profile is assigned and no selector matches', { autoAccepted });
  if (INSTALLED_STATES.includes(machine.state) && !machine.reprovision) return d('local', `Talos is ${machine.state}: boot from disk`, { autoAccepted });
  if (profile.assetsProblem) return d('hold', `profile ${profile.name}: ${profile.assetsProblem}`, { autoAccepted });
  if (machine.reprovision) return d('install', `reprovision requested: install profile ${profile.name}, wiping the install disk`, { wipe: true, autoAccepted });
  const why = autoAccepted ? 'auto-accepted by its selector' : 'accepted';
  return d('install', `${why}, state ${machine.state}: install profile ${profile.name}`, { autoAccepted });
}
