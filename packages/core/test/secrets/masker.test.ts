import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { MASK, MIN_SECRET_LENGTH, PermanentJobError, createMasker } from '../../src/index.ts';

const SECRET = 'p@ss w/rd"&\\+';

describe('createMasker masks a secret', () => {
  const masker = createMasker([SECRET]);
  const rows: { form: string; text: string }[] = [
    { form: 'plain', text: `password=${SECRET};` },
    { form: 'encodeURIComponent', text: `https://x.test/?p=${encodeURIComponent(SECRET)}&q=1` },
    { form: 'form-encoded', text: `a=1&${new URLSearchParams({ p: SECRET }).toString()}` },
    { form: 'JSON-escaped', text: JSON.stringify({ password: SECRET }) },
    { form: 'JSON in JSON', text: JSON.stringify({ body: JSON.stringify({ password: SECRET }) }) },
  ];
  it.each(rows)('$form', ({ text }) => {
    const masked = masker.mask(text);
    expect(masked).toContain(MASK);
    expect(masked).not.toContain(SECRET);
    expect(masked).not.toContain(encodeURIComponent(SECRET));
    expect(masked).not.toContain(JSON.stringify(SECRET).slice(1, -1));
  });

  it('masks a secret in a URL path as the URL parser encodes it', () => {
    const secret = 'p@ss w{rd}"&+';
    const text = `GET ${new URL(`https://x.test/a/${secret}/b`).href} failed`;
    expect(text).not.toContain(secret);
    expect(createMasker([secret]).mask(text)).toBe(`GET https://x.test/a/${MASK}/b failed`);
  });

  it('has no URL-path form for a secret the URL parser would cut: never masks a fragment of it', () => {
    const cut = createMasker(['a#bcdefgh', 'x?yzwvuts', 'p/../q/rst']);
    expect(cut.mask('banana and apples, xylophones, p and q')).toBe('banana and apples, xylophones, p and q');
    expect(cut.mask('token a#bcdefgh')).toBe(`token ${MASK}`);
  });

  it("masks the URL-path form of a secret holding '%' (the parser leaves it as it is)", () => {
    for (const secret of ['pa ss%word', '{%41bcdef', 'naïve%pass']) {
      const text = new URL(`https://x.test/${secret}`).pathname;
      expect(createMasker([secret]).mask(text), secret).toBe(`/${MASK}`);
    }
  });

  it('keeps the surrounding text', () => {
    expect(masker.mask(`user=bob password=${SECRET}; ok`)).toBe('user=bob password=***; ok');
    expect(masker.mask(JSON.stringify({ password: SECRET, user: 'bob' }))).toBe(
      '{"password":"***","user":"bob"}',
    );
  });

  it('masks every occurrence', () => {
    expect(masker.mask(`${SECRET}-${SECRET}`)).toBe('***-***');
  });
});

describe('base64', () => {
  const secret = 'hunter2-but-longer';
  const masker = createMasker([secret]);

  // Every prefix length covers the three byte alignments the secret can have in a base64 stream.
  it.each(['', 'a', 'ab', 'abc', 'alice:', 'bob:', 'x:'])('masks Basic auth for user prefix %j', (prefix) => {
    for (const encoding of ['base64', 'base64url'] as const) {
      const encoded = Buffer.from(`${prefix}${secret}`).toString(encoding);
      const masked = masker.mask(`Authorization: Basic ${encoded}`);
      expect(masked).toContain(MASK);
      const rest = masked.slice('Authorization: Basic '.length).split(MASK);
      // What remains visible is at most a few edge characters on each side of the secret.
      expect(rest.join('').length).toBeLessThanOrEqual(encoded.length - (secret.length * 4) / 3 + 4);
    }
  });
});

describe('masking order and limits', () => {
  it('masks the longest secret first when one contains another', () => {
    const masker = createMasker(['abcd', 'abcdefgh']);
    expect(masker.mask('xx abcdefgh yy abcd')).toBe('xx *** yy ***');
  });

  it(`ignores secrets shorter than ${MIN_SECRET_LENGTH} characters and empty ones`, () => {
    const masker = createMasker(['', 'a', 'abc']);
    expect(masker.mask('a abc abcd')).toBe('a abc abcd');
  });

  it('treats regular-expression characters literally', () => {
    const masker = createMasker(['.*+?^${}()|[]\\']);
    expect(masker.mask('a .*+?^${}()|[]\\ b ....')).toBe('a *** b ....');
  });

  it('is a no-op without secrets', () => {
    const masker = createMasker([]);
    const value = { a: 'x' };
    expect(masker.mask('anything')).toBe('anything');
    expect(masker.maskDeep(value)).toBe(value);
  });
});

describe('maskDeep', () => {
  const masker = createMasker(['tok-12345', 'other-secret']);

  it('masks strings in nested objects and arrays, keys included, and keeps other values', () => {
    const value = {
      headers: { Authorization: 'Bearer tok-12345' },
      list: ['a', 'other-secret', 1, null, true, { deep: ['x tok-12345 y'] }],
      'tok-12345': 'echoed as a key',
      at: new Date(0),
    };
    expect(masker.maskDeep(value)).toEqual({
      headers: { Authorization: 'Bearer ***' },
      list: ['a', '***', 1, null, true, { deep: ['x *** y'] }],
      '***': 'echoed as a key',
      at: new Date(0),
    });
    expect(value.headers.Authorization).toBe('Bearer tok-12345');
  });

  it('copies errors with their class, code, message, stack and cause masked', () => {
    const error = new PermanentJobError('401 for token tok-12345', 'HTTP_401', {
      cause: new Error('body: other-secret'),
    });
    const masked = masker.maskDeep(error);
    expect(masked).not.toBe(error);
    expect(masked).toBeInstanceOf(PermanentJobError);
    expect(masked.code).toBe('HTTP_401');
    expect(masked.message).toBe('401 for token ***');
    expect(masked.stack).not.toContain('tok-12345');
    expect((masked.cause as Error).message).toBe('body: ***');
    expect(error.message).toBe('401 for token tok-12345');
  });

  it('survives cycles', () => {
    const a: { self?: unknown; s: string } = { s: 'tok-12345' };
    a.self = a;
    const out = masker.maskDeep(a);
    expect(out.s).toBe('***');
    expect(out.self).toBe(out);
  });
});
