import type { Context } from '../context.ts';
import { disabledService, type Service } from '../service.ts';

export function createTftpService(ctx: Context): Service {
  return disabledService('tftp', ctx.settings.tftp.enabled ? 'TFTP is not built yet' : 'tftp.enabled is false');
}
