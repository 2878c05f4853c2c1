import { Buffer } from 'node:buffer';
import { mapStrings } from '../templates/map-strings.ts';

/** What a masked secret becomes. */
export const MASK = '***';

/**
 * Secrets shorter than this are not masked: masking `a` would mangle every log line. The API must
 * refuse to store a sensitive variable whose value is shorter, so no secret escapes this way.
 */
export const MIN_SECRET_LENGTH = 4;

export interface Masker {
  /** `text` with every known form of every secret replaced by {@link MASK}. */
  mask(text: string): string;
  /**
   * A copy of `value` with every string masked: nested arrays and plain objects, object keys included,
   * and `Error`s (copied with the same prototype; `message`, `stack`, `cause` and other own properties
   * masked). Other objects (Date, Map, Buffer, class instances) are returned as they are.
   */
  maskDeep<T>(value: T): T;
}

/**
 * Builds a masker for the sensitive values a run used (see `renderDeepWithSecrets`).
 *
 * Each secret of at least {@link MIN_SECRET_LENGTH} characters is masked in these forms:
 * - as it is;
 * - URL-encoded, both `encodeURIComponent` and form style (`URLSearchParams`, space as `+`);
 * - JSON-escaped (inside a JSON string), once and twice (JSON text embedded in a JSON string);
 * - inside base64 and base64url text, at any of the three byte alignments, so
 *   `Authorization: Basic base64(user:secret)` is masked too. Only the base64 characters that depend on
 *   the secret alone are replaced; the one or two characters at each edge that mix in neighbouring
 *   bytes stay.
 *
 * Longer forms are matched first, so a secret that contains another secret is masked whole.
 *
 * Not masked (a known limit): other encodings (hex, HTML entities, lowercase `%2f` escapes, UTF-16),
 * hashes or HMACs of a secret, compressed or encrypted data, a secret split across two strings or two
 * log chunks, and secrets shorter than {@link MIN_SECRET_LENGTH}.
 */
export function createMasker(secrets: Iterable<string>): Masker {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    for (const form of formsOf(secret)) if (form.length > 0) forms.add(form);
  }
  if (forms.size === 0) {
    return { mask: (text) => text, maskDeep: (value) => value };
  }
  const sorted = [...forms].sort((a, b) => b.length - a.length);
  // Alternatives are tried in order at each position, so longest first means longest match wins.
  const pattern = new RegExp(sorted.map(escapeRegExp).join('|'), 'g');
  const mask = (text: string): string => (text.length === 0 ? text : text.replace(pattern, () => MASK));
  return {
    mask,
    maskDeep: (value) => mapStrings(value, mask, { keys: true, errors: true }),
  };
}

/**
 * The secret as a URL's path encodes it ('/' kept, '{' as %7B, …), when that form is faithful: a
 * secret the URL parser would cut or rewrite (at '?', '#', '\\', dot segments) has none, rather
 * than a fragment that would mask innocent text.
 */
function urlPathForm(secret: string): string[] {
  // The path percent-encode set: controls, space, non-ASCII and " # < > ? ` { } ('%' stays as is).
  const expected = [...secret]
    .map((ch) => {
      const cp = ch.codePointAt(0) as number;
      return cp <= 0x20 || cp > 0x7e || '"#<>?`{}'.includes(ch) ? encodeURIComponent(ch) : ch;
    })
    .join('');
  try {
    return new URL(`http://h/${secret}`).pathname.slice(1) === expected ? [expected] : [];
  } catch {
    return [];
  }
}

function formsOf(secret: string): string[] {
  const json = JSON.stringify(secret).slice(1, -1);
  return [
    secret,
    encodeURIComponent(secret),
    new URLSearchParams({ s: secret }).toString().slice(2),
    ...urlPathForm(secret),
    json,
    JSON.stringify(json).slice(1, -1),
    ...base64Cores(Buffer.from(secret, 'utf8')),
  ];
}

/**
 * The base64 text that any encoding of a byte string containing `bytes` must contain, for each of the
 * three offsets `bytes` can start at within a 3-byte group, in both alphabets. A character is kept only
 * if all six of its bits come from `bytes`.
 */
function base64Cores(bytes: Buffer): string[] {
  const cores: string[] = [];
  for (const offset of [0, 1, 2] as const) {
    const padded = Buffer.concat([Buffer.alloc(offset), bytes]);
    let encoded = padded.toString('base64').replace(/=+$/, '');
    if (padded.length % 3 !== 0) encoded = encoded.slice(0, -1);
    // 1 leading byte taints 2 characters, 2 leading bytes taint 3.
    const core = encoded.slice([0, 2, 3][offset]);
    if (core.length < MIN_SECRET_LENGTH) continue;
    cores.push(core, core.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return cores;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
