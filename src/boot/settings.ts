import { int, oneOf, section, str } from '../schema.ts';

export const bootSettings = section('The boot decision and the iPXE scripts machines get.', {
  unknownMachines: oneOf(
    'What a machine no operator has accepted gets. hold: a "waiting for approval" script that re-asks every boot.holdSeconds; ignore: the local-boot answer (firmware goes on to its next boot entry); discover-only: Talos in maintenance mode, never a config or a token.',
    'hold',
    ['hold', 'ignore', 'discover-only'] as const,
  ),
  localBoot: oneOf('How a machine is told to boot from its disk. exit: leave iPXE, the firmware tries its next boot entry; exit1: the same with an error code (some UEFI firmware only moves on then); sanboot: boot BIOS drive 0x80.', 'exit', ['exit', 'exit1', 'sanboot'] as const),
  holdSeconds: int('How long a held machine waits before asking again.', 30, 5, 3600),
  fetchRetries: int('How many times an install script retries a kernel or initrd download before starting over.', 3, 1, 20),
  neighbourCheck: oneOf(
    'Compare the MAC a machine claims with the kernel ARP table entry of the IP it asks from. mismatch: refuse when an entry exists and differs (routed clients have none); strict: also refuse when there is no entry; off: never check.',
    'mismatch',
    ['off', 'mismatch', 'strict'] as const,
  ),
  tokenTtlMinutes: int('How long a config token stays valid. Talos retries a config download for 3 hours, so less is refused.', 240, 180, 10080),
});

export const profilesSettings = section('Profiles (what to install) and selectors (which machine gets which profile).', {
  dir: str('Directory of profile and selector YAML files (*.yaml at its top level; base configs and patches they name are read relative to it). Empty: only profiles stored in the inventory.', ''),
});
