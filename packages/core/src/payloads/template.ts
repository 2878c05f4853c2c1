import { z } from 'zod';
import { parseTemplate } from '../templates/template-parser.ts';

/**
 * Whether a string holds a `{{...}}` template (e.g. `{{var.API_TOKEN}}`). Templates are resolved by
 * the worker before an executor runs, so a templated field can only be checked after resolution.
 */
export function hasTemplate(value: string): boolean {
  return value.includes('{{');
}

/**
 * An absolute http(s) URL, or a string with a `{{...}}` template that resolves to one later.
 * Credentials in the URL are refused: they belong in `httpAuth`, where they are never logged.
 */
export const templatedHttpUrlSchema = z
  .string()
  .trim()
  .min(1, 'is required')
  .max(2048, 'must be at most 2048 characters')
  .superRefine((value, ctx) => {
    if (hasTemplate(value)) return;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute http:// or https:// URL' });
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', message: `must use http or https, not ${url.protocol.slice(0, -1)}` });
    } else if (url.username !== '' || url.password !== '') {
      ctx.addIssue({ code: 'custom', message: 'must not embed credentials; use httpAuth' });
    }
  });

/**
 * Whether a string's templates name the trigger (`{{trigger.…}}`). A malformed template answers
 * false: rendering it reports the syntax error with its position.
 */
function namesTrigger(value: string): boolean {
  if (!hasTemplate(value)) return false;
  try {
    return parseTemplate(value).some((part) => typeof part !== 'string' && part.ref.root === 'trigger');
  } catch {
    return false;
  }
}

/**
 * The payload fields that are code — run by an interpreter or a database — with where a trigger's
 * values go instead. A webhook or manual trigger is outside input: inserted into code it would run
 * as code (`{"n": "$(rm -rf ~)"}`, `'; DROP TABLE …`), so these fields refuse `{{trigger.…}}`.
 * Variables, run and job fields remain allowed there (their values are the job owner's own).
 */
const CODE_FIELDS: Readonly<Record<string, { field: string; instead: string }>> = {
  SCRIPT: {
    field: 'scriptContent',
    instead: 'pass them in scriptEnv and read them as environment variables',
  },
  DATABASE: { field: 'query', instead: 'pass them as parameters' },
};

/** The message of a code field that names the trigger. */
function triggerInCodeMessage(type: string): string {
  const code = CODE_FIELDS[type];
  return `must not hold {{trigger.…}} templates: a trigger's values would run as code; ${code?.instead ?? 'use a data field'}`;
}

/**
 * The code field of `payload` (as defined, before rendering) that names the trigger, with what is
 * wrong, else null. Checked where a definition is validated, and by the worker before rendering (a
 * definition may predate the check) — never on a rendered payload, where `{{trigger…}}` can be plain
 * text (an escaped `{{{{`, a variable's value).
 */
export function triggerInCode(
  type: string,
  payload: Readonly<Record<string, unknown>>,
): { field: string; message: string } | null {
  const code = CODE_FIELDS[type];
  if (!code) return null;
  const value = payload[code.field];
  return typeof value === 'string' && namesTrigger(value)
    ? { field: code.field, message: triggerInCodeMessage(type) }
    : null;
}
