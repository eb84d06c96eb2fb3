export function bundle(entry: string, opts?: { sourcemap?: boolean }): Promise<string>;
