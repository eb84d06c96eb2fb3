import type { Context } from '../context.ts';
import { disabledService, type Service } from '../service.ts';

export function createDhcpService(ctx: Context): Service {
  return disabledService('dhcp', ctx.settings.dhcp.enabled ? 'proxy-DHCP is not built yet' : 'dhcp.enabled is false');
}
