import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/**
 * Network namespaces made by a test and removed by it. Every name starts with "heph-t" plus the test process id
 * so parallel test files never collide and leftovers are recognisable. Nothing here touches a host interface.
 */
export class Netns {
  static created = new Set<string>();

  private constructor(readonly name: string) {}

  static create(tag: string): Netns {
    const name = `heph-t${process.pid}-${tag}`.slice(0, 30);
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    } catch {
      // Not there: the normal case.
    }
    execFileSync('ip', ['netns', 'add', name]);
    Netns.created.add(name);
    const ns = new Netns(name);
    ns.run('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Runs a command inside the namespace and returns its stdout. */
  run(cmd: string, args: string[], opts: { input?: string; timeout?: number } = {}): string {
    return execFileSync('ip', ['netns', 'exec', this.name, cmd, ...args], { encoding: 'utf8', timeout: opts.timeout ?? 30_000, ...(opts.input === undefined ? {} : { input: opts.input }) });
  }

  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  }

  /** Adds an address to an interface in this namespace and brings it up. */
  addr(iface: string, cidr: string): void {
    this.run('ip', ['addr', 'add', cidr, 'dev', iface]);
    this.run('ip', ['link', 'set', iface, 'up']);
  }

  destroy(): void {
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {
      // Already gone.
    }
    Netns.created.delete(this.name);
  }
}

/** A veth pair with one end in each namespace (`a` in nsA, `b` in nsB), named to fit the 15-character limit. */
export function vethPair(nsA: Netns, a: string, nsB: Netns, b: string): void {
  const tmpA = `hv${process.pid % 100000}a${Math.floor(Math.random() * 1e4)}`.slice(0, 15);
  const tmpB = `hv${process.pid % 100000}b${Math.floor(Math.random() * 1e4)}`.slice(0, 15);
  execFileSync('ip', ['link', 'add', tmpA, 'type', 'veth', 'peer', 'name', tmpB]);
  execFileSync('ip', ['link', 'set', tmpA, 'netns', nsA.name]);
  execFileSync('ip', ['link', 'set', tmpB, 'netns', nsB.name]);
  nsA.run('ip', ['link', 'set', tmpA, 'name', a]);
  nsB.run('ip', ['link', 'set', tmpB, 'name', b]);
  nsA.run('ip', ['link', 'set', a, 'up']);
  nsB.run('ip', ['link', 'set', b, 'up']);
}

/** True when this process may create namespaces (root with iproute2); tests that need them skip otherwise. */
export function canUseNetns(): boolean {
  try {
    const probe = Netns.create('probe');
    probe.destroy();
    return true;
  } catch {
    return false;
  }
}

// A test that dies mid-way must not leave namespaces behind.
process.on('exit', () => {
  for (const name of Netns.created) {
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    } catch {
      // Best effort.
    }
  }
});
