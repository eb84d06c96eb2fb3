// The machine table's query, built from validated filters. Pure: returns SQL and named parameters, never runs it.

export const SORTS = {
  firstSeen: 'm.first_seen',
  lastSeen: 'm.last_seen',
  hostname: 'm.hostname',
  state: 'm.state',
  ip: 'm.last_ip',
} as const;
export type Sort = keyof typeof SORTS;

export interface MachineFilter {
  state?: string | undefined;
  acceptance?: string | undefined;
  /** Profile name, or the empty string for "no profile assigned". */
  profile?: string | undefined;
  /** `key=value` pairs, all of which must match. */
  labels?: { key: string; value: string }[] | undefined;
  /** Free text: a substring of id, hostname, UUID, serial, IP or any MAC (case-insensitive). */
  q?: string | undefined;
  sort?: Sort | undefined;
  desc?: boolean | undefined;
  limit: number;
  offset: number;
}

export interface BuiltQuery {
  where: string;
  order: string;
  params: Record<string, string | number>;
}

/** LIKE with the wildcards of the user's text taken literally. */
export function likePattern(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export function buildMachineQuery(f: MachineFilter): BuiltQuery {
  const clauses: string[] = [];
  const params: Record<string, string | number> = {};
  if (f.state !== undefined) (clauses.push('m.state = @state'), (params.state = f.state));
  if (f.acceptance !== undefined) (clauses.push('m.acceptance = @acceptance'), (params.acceptance = f.acceptance));
  if (f.profile !== undefined) {
    if (f.profile === '') clauses.push('m.profile IS NULL');
    else (clauses.push('m.profile = @profile'), (params.profile = f.profile));
  }
  (f.labels ?? []).forEach((l, i) => {
    clauses.push(`EXISTS (SELECT 1 FROM json_each(m.labels) WHERE key = @lk${i} AND value = @lv${i})`);
    params[`lk${i}`] = l.key;
    params[`lv${i}`] = l.value;
  });
  if (f.q !== undefined && f.q !== '') {
    params.q = likePattern(f.q);
    const cols = ['m.id', 'm.hostname', 'm.uuid', 'm.serial', 'm.last_ip'].map((c) => `lower(${c}) LIKE @q ESCAPE '\\'`);
    cols.push(`EXISTS (SELECT 1 FROM nics n WHERE n.machine_id = m.id AND n.mac LIKE @q ESCAPE '\\')`);
    clauses.push(`(${cols.join(' OR ')})`);
  }
  const dir = f.desc ? 'DESC' : 'ASC';
  const order = `${SORTS[f.sort ?? 'firstSeen']} ${dir}, m.id ${dir}`;
  return { where: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', order, params };
}

/** `rack=r1` → { key: 'rack', value: 'r1' }; undefined when there is no '=' or the key is empty. */
export function parseLabelFilter(s: string): { key: string; value: string } | undefined {
  const eq = s.indexOf('=');
  if (eq <= 0) return undefined;
  return { key: s.slice(0, eq), value: s.slice(eq + 1) };
}
