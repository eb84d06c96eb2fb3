/**
 * Talos events as heph understands them, after decoding (src/events/decode.ts) and before any decision
 * (src/boot/lifecycle.ts). Plain data: enum values are Talos's names, unknown enum numbers become their digits.
 */
export type TalosEvent =
  | { type: 'sequence'; sequence: string; action: string; error?: { code: string; message: string } }
  | { type: 'phase'; phase: string; action: string }
  | { type: 'task'; task: string; action: string }
  | { type: 'service'; service: string; action: string; message: string; healthy: boolean | null }
  | { type: 'status'; stage: string; ready: boolean; unmet: { name: string; reason: string }[] }
  | { type: 'configLoadError'; error: string }
  | { type: 'address'; hostname: string; addresses: string[] }
  | { type: 'restart'; cmd: number };

const REBOOT_CMDS: Record<number, string> = {
  0x01234567: 'restart',
  0x45584543: 'kexec',
  0x4321fedc: 'power off',
  0xcdef0123: 'halt',
};

/** One line for the timeline and the CLI, e.g. "phase install started". */
export function summarize(e: TalosEvent): string {
  switch (e.type) {
    case 'sequence': {
      if (e.error) return `sequence ${e.sequence} ended with ${e.error.code}: ${e.error.message}`;
      return `sequence ${e.sequence} ${verb(e.action)}`;
    }
    case 'phase':
      return `phase ${e.phase} ${verb(e.action)}`;
    case 'task':
      return `task ${e.task} ${verb(e.action)}`;
    case 'service':
      return `service ${e.service} ${e.action.toLowerCase()}${e.message ? `: ${e.message}` : ''}`;
    case 'status': {
      const unmet = e.unmet.map((u) => (u.reason ? `${u.name} (${u.reason})` : u.name)).join(', ');
      return `machine stage ${e.stage.toLowerCase()}, ${e.ready ? 'ready' : `not ready${unmet ? `: ${unmet}` : ''}`}`;
    }
    case 'configLoadError':
      return `config load error: ${e.error}`;
    case 'address':
      return `addresses ${e.addresses.join(', ') || '(none)'}${e.hostname ? `, hostname ${e.hostname}` : ''}`;
    case 'restart':
      return `restart: ${REBOOT_CMDS[e.cmd] ?? `reboot command ${e.cmd}`}`;
  }
}

function verb(action: string): string {
  return action === 'START' ? 'started' : action === 'STOP' ? 'stopped' : action.toLowerCase();
}
