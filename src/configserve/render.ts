import { createHash } from 'node:crypto';
import { validateTalosConfig } from './validate.ts';

/** What the inventory knows about one machine that ends up in its config. */
export interface MachineFacts {
  hostname?: string;
  installDisk?: string;
  installDiskSelector?: Record<string, unknown>;
  labels?: Record<string, string>;
}

export interface RenderInput {
  /** The profile's base Talos config: YAML text, possibly multi-document. */
  base: string;
  /** Profile patches in order: strategic-merge YAML (one or more documents) or an RFC 6902 operation list. */
  patches: string[];
  /** Per-machine patch, applied last. */
  machine?: MachineFacts;
  /** Whole documents appended; a document of the same kind/name replaces the existing one. */
  extraDocuments?: string[];
}

export type RenderResult = { ok: true; yaml: string; sha256: string } | { ok: false; errors: string[] };

export function renderConfig(input: RenderInput): RenderResult {
  const errors = validateTalosConfig(input.base);
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, yaml: input.base, sha256: createHash('sha256').update(input.base).digest('hex') };
}
