export type ServiceState = 'starting' | 'up' | 'stopping' | 'stopped' | 'failed' | 'disabled';

export interface ServiceHealth {
  state: ServiceState;
  detail?: string;
  /** Where it listens, once up, e.g. { tcp: "0.0.0.0:8080" }. */
  listening?: Record<string, string>;
}

/**
 * A long-running part of the daemon. start() either listens on everything it needs or throws a StartupError
 * (having closed whatever it opened); stop() finishes in-flight work within the daemon's grace period.
 */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): ServiceHealth;
}

/** A placeholder for a service the settings turned off, so /healthz still lists it. */
export function disabledService(name: string, why: string): Service {
  return {
    name,
    start: async () => {},
    stop: async () => {},
    health: () => ({ state: 'disabled', detail: why }),
  };
}
