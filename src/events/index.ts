import type { Context } from '../context.ts';
import { disabledService, type Service } from '../service.ts';

export function createEventsService(_ctx: Context): Service {
  return disabledService('events', 'the Talos event sink is not built yet');
}
