import { z } from 'zod';

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
