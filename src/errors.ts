/**
 * A failure to start, phrased for an operator: what failed, why, and how to fix it. The CLI prints `message`
 * and `hint` and exits non-zero; nothing else in the program needs to format startup failures.
 */
export class StartupError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StartupError';
  }
}

/**
 * Explains why a socket could not be bound. `setting` names what to change, `service` names what to turn off.
 */
export function bindFailure(opts: { service: string; proto: 'TCP' | 'UDP'; address: string; port: number; setting: string; disable?: string; err: unknown }): StartupError {
  const { service, proto, address, port, setting, disable, err } = opts;
  const code = (err as NodeJS.ErrnoException).code;
  const what = `${service}: cannot listen on ${proto} ${address}:${port}`;
  const off = disable ? `, or turn ${service} off with ${disable}: false` : '';
  switch (code) {
    case 'EACCES':
      return new StartupError(
        `${what}: permission denied (ports below 1024 are privileged).`,
        `Run heph as root, or grant it CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE; by hand: setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v node)")"), or pick another port with ${setting}${off}.`,
        { cause: err },
      );
    case 'EADDRINUSE':
      return new StartupError(
        `${what}: the port is already in use by another program.`,
        `Find it with \`ss -${proto === 'UDP' ? 'u' : 't'}lnp 'sport = :${port}'\`; stop it, or pick another port with ${setting}${off}.`,
        { cause: err },
      );
    case 'EADDRNOTAVAIL':
      return new StartupError(`${what}: ${address} is not an address of this machine.`, `Use one of this machine's addresses (\`ip -4 addr\`) or 0.0.0.0.`, { cause: err });
    default:
      return new StartupError(`${what}: ${(err as Error).message}`, disable ? `Turn ${service} off with ${disable}: false if it is not needed.` : undefined, { cause: err });
  }
}
