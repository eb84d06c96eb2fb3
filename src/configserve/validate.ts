import { parseAllDocuments } from 'yaml';

/** [] when Talos would accept the config; otherwise one message per problem. */
export function validateTalosConfig(yamlText: string): string[] {
  const docs = parseAllDocuments(yamlText);
  if (!Array.isArray(docs)) return ['config is not YAML'];
  const errors = docs.flatMap((d) => d.errors.map((e) => e.message));
  if (errors.length > 0) return errors;
  return docs.some((d) => (d.toJS() as { version?: unknown } | null)?.version === 'v1alpha1') ? [] : ['no v1alpha1 document'];
}
