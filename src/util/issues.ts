/** zod issues as people read them: a field path and what was wrong there. */

export function issueText(issue: { code: string; message: string; keys?: string[] }): string {
  if (issue.code === 'unrecognized_keys' && issue.keys) return `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  const m = issue.message.replace(/^Invalid input: /, '');
  return m.endsWith(', received undefined') ? `missing: ${m.replace(', received undefined', '')}` : m;
}

export function fieldPath(parts: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of parts) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}
