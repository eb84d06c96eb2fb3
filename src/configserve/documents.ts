// Which document of a multi-document Talos config a YAML document is: Talos identifies documents by
// apiVersion + kind (+ name for named kinds); the legacy v1alpha1 document has neither and is recognised by its
// top-level keys.
import type { Document } from 'yaml';
import { findPair, isMap, isScalar, type YAMLMap } from './yaml.ts';

export interface DocId {
  /** '' for the v1alpha1 document. */
  apiVersion: string;
  /** 'v1alpha1' for the v1alpha1 document. */
  kind: string;
  /** '' for unnamed kinds. */
  name: string;
}

export const V1ALPHA1 = 'v1alpha1';

const LEGACY_KEYS = ['machine', 'cluster', 'debug', 'persist', 'version'];

function stringAt(map: YAMLMap, key: string): string | undefined {
  const value = findPair(map, key)?.value;
  return isScalar(value) && value.value !== null ? String(value.value) : undefined;
}

/** The identity of a document, or why it has none. */
export function documentId(doc: Document): DocId | string {
  const root = doc.contents;
  if (!isMap(root)) return 'a config document must be a map';
  const kind = stringAt(root, 'kind');
  const apiVersion = stringAt(root, 'apiVersion');
  const name = stringAt(root, 'name') ?? '';
  if (kind === undefined) {
    if (LEGACY_KEYS.some((k) => findPair(root, k) !== undefined) || apiVersion === V1ALPHA1) {
      return { apiVersion: '', kind: V1ALPHA1, name: '' };
    }
    return 'document has no kind (and is not a v1alpha1 document: no machine/cluster/version keys)';
  }
  if (apiVersion === undefined) return `document of kind ${kind} has no apiVersion`;
  return { apiVersion, kind, name };
}

export function isLegacy(id: DocId): boolean {
  return id.kind === V1ALPHA1 && id.apiVersion === '';
}

export function sameDoc(a: DocId, b: DocId): boolean {
  return a.apiVersion === b.apiVersion && a.kind === b.kind && a.name === b.name;
}

export function describeDoc(id: DocId): string {
  if (isLegacy(id)) return 'the v1alpha1 document';
  return `${id.apiVersion}/${id.kind}${id.name === '' ? '' : ` "${id.name}"`}`;
}

/** Index of the document with this identity in `docs`, or -1. */
export function findDocument(docs: readonly Document[], id: DocId): number {
  return docs.findIndex((d) => {
    const other = documentId(d);
    return typeof other !== 'string' && sameDoc(other, id);
  });
}
