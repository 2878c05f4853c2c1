// Literal secrets in job payloads never leave the API: answers and stored definition documents show
// them as `***`. The recommended form is a `{{var.NAME}}` reference to a sensitive variable, which
// is not a secret itself and is shown as written.
import { MASK, hasTemplate } from '@chronos/core';

/**
 * Field names whose values are secrets: httpAuth `password` / `token` / `clientSecret`, headers
 * such as `Authorization` or `X-Api-Key`, script variables such as `DB_PASSWORD`. Compared in
 * lower case without `-`, `_` and spaces, at the end of the name (`tokenUrl` is not a secret).
 */
const SECRET_NAME = /(password|passwd|passphrase|secret|apikey|authorization|credentials?|token|cookie)$/;

/** `scheme://user:password@` at the start of a string (database, Redis, broker URLs). */
const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@]*:)([^\s@/?#]+)(@)/i;

function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name.toLowerCase().replace(/[-_\s]/g, ''));
}

/** The masked form of a string found under `name`; the string itself when it holds no secret. */
function maskString(name: string, value: string): string {
  if (value === '' || value === MASK) return value;
  if (isSecretName(name)) return hasTemplate(value) ? value : MASK;
  return value.replace(URL_PASSWORD, (whole, head: string, password: string, at: string) =>
    hasTemplate(password) ? whole : `${head}${MASK}${at}`,
  );
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A deep copy of `value` with every literal secret replaced by `***`. */
export function maskSecrets<T>(value: T, name = ''): T {
  if (typeof value === 'string') return maskString(name, value) as T;
  if (Array.isArray(value)) return value.map((v) => maskSecrets(v, name)) as T;
  if (isObject(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskSecrets(v, k)])) as T;
  return value;
}

/**
 * A changed definition sent back as it was read: wherever `next` holds exactly the masked form of
 * the stored secret at the same place, the stored secret is kept (so GET → edit → PUT does not
 * overwrite a password with `***`). Any other value replaces it.
 */
export function restoreMasked<T>(next: T, stored: unknown, name = ''): T {
  if (typeof next === 'string')
    return (
      typeof stored === 'string' && next !== stored && maskString(name, stored) === next ? stored : next
    ) as T;
  if (Array.isArray(next))
    return next.map((v, i) => restoreMasked(v, Array.isArray(stored) ? stored[i] : undefined, name)) as T;
  if (isObject(next))
    return Object.fromEntries(
      Object.entries(next).map(([k, v]) => [
        k,
        restoreMasked(v, isObject(stored) ? stored[k] : undefined, k),
      ]),
    ) as T;
  return next;
}
