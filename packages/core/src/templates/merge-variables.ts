import type { TemplateVar } from './render-template.ts';

/**
 * The variables a run sees: global ones, overridden name by name by the job's own. The override is
 * whole (value and sensitivity): a job-scoped plain value hides a global secret of the same name, and
 * since the secret is then never inserted it needs no masking.
 */
export function mergeVariables(
  globals: Iterable<readonly [string, TemplateVar]>,
  jobScoped: Iterable<readonly [string, TemplateVar]>,
): Map<string, TemplateVar> {
  const merged = new Map<string, TemplateVar>(globals);
  for (const [name, variable] of jobScoped) merged.set(name, variable);
  return merged;
}
