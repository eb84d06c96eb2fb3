import { talosArch } from '../ipxe/identity.ts';

/** What a selector may test. Each present key must match; lists match any of their values. */
export interface SelectorMatch {
  mac?: string[];
  uuid?: string[];
  serial?: string[];
  arch?: string[];
  hostname?: string[];
  labels?: Record<string, string>;
}

export interface Selector {
  name: string;
  profile: string;
  match: SelectorMatch;
  autoAccept: boolean;
  source: string;
}

/** The machine facts selectors look at (a subset of the inventory row). */
export interface MachineFacts {
  id: string;
  macs: string[];
  uuid: string | null;
  serial: string | null;
  arch: string | null;
  hostname: string | null;
  labels: Record<string, string>;
  /** Explicit assignment: wins over every selector. */
  profile: string | null;
}

export type ProfileChoice =
  | { profile: string; via: 'assignment'; reason: string; autoAccept: false }
  | { profile: string; via: 'selector'; selector: string; score: number; reason: string; autoAccept: boolean }
  | { profile: null; reason: string; autoAccept: false };

/** How many keys the selector tests (a label counts as one key each), or -1 when one of them does not match. */
export function score(m: SelectorMatch, f: MachineFacts): number {
  let n = 0;
  const test = (values: string[] | undefined, have: (v: string) => boolean): boolean => {
    if (values === undefined) return true;
    n++;
    return values.some(have);
  };
  const ok =
    test(m.mac, (v) => f.macs.includes(v)) &&
    test(m.uuid, (v) => f.uuid === v) &&
    test(m.serial, (v) => f.serial === v) &&
    // amd64 and x86_64 name the same machines: compare Talos arch names when both sides have one.
    test(m.arch, (v) => v === f.arch || (talosArch(v) !== undefined && talosArch(v) === talosArch(f.arch))) &&
    test(m.hostname, (v) => f.hostname === v);
  if (!ok) return -1;
  for (const [k, v] of Object.entries(m.labels ?? {})) {
    n++;
    if (f.labels[k] !== v) return -1;
  }
  return n;
}

/**
 * Which profile a machine gets, and why. An explicit assignment wins. Otherwise the matching selector with the
 * most keys wins; among equals the name that sorts first wins, so the answer never depends on load order.
 */
export function chooseProfile(f: MachineFacts, selectors: readonly Selector[]): ProfileChoice {
  if (f.profile) return { profile: f.profile, via: 'assignment', reason: `assigned to profile ${f.profile}`, autoAccept: false };
  let best: { sel: Selector; score: number } | undefined;
  const tied: string[] = [];
  for (const sel of selectors) {
    const s = score(sel.match, f);
    if (s < 0) continue;
    if (!best || s > best.score || (s === best.score && sel.name < best.sel.name)) {
      if (best && s === best.score) tied.push(best.sel.name);
      else tied.length = 0;
      best = { sel, score: s };
    } else if (s === best.score) tied.push(sel.name);
  }
  if (!best) return { profile: null, reason: 'no selector matches and no profile is assigned', autoAccept: false };
  const keys = best.score === 1 ? '1 key' : `${best.score} keys`;
  const tie = tied.length ? `; tied with ${tied.sort().join(', ')}, first by name wins` : '';
  return {
    profile: best.sel.profile,
    via: 'selector',
    selector: best.sel.name,
    score: best.score,
    reason: `selector ${best.sel.name} matches ${keys}${tie}`,
    autoAccept: best.sel.autoAccept,
  };
}
