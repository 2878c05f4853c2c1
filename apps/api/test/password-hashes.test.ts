import { newId } from '@chronos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BCRYPT_COST, hashPassword, passwordCost, verifyPassword } from '../src/auth/passwords.ts';
import { startTestApi, type TestApi } from './harness.ts';

let t: TestApi;

beforeAll(async () => {
  t = await startTestApi('password-hashes');
});

afterAll(async () => {
  await t?.stop();
});

const PASSWORD = 'correct horse battery';
/**
 * Hashes of PASSWORD written by bcryptjs 3 (`hashSync(PASSWORD, 4)`), as users created before the
 * switch to native bcrypt hold them; `$2a$` (bcryptjs 2) and `$2y$` (PHP) name the same algorithm.
 */
const BCRYPTJS_HASHES = {
  $2b$: '$2b$04$JAY9ZEiGDpGykb3CvPfsuOsNYfX71hQg4SlUCsiQ0B24dmTPTknHe',
  $2a$: '$2a$04$JAY9ZEiGDpGykb3CvPfsuOsNYfX71hQg4SlUCsiQ0B24dmTPTknHe',
  $2y$: '$2y$04$JAY9ZEiGDpGykb3CvPfsuOsNYfX71hQg4SlUCsiQ0B24dmTPTknHe',
  cost12: '$2b$12$Y5A63fIf9CiGy0ZSgF0mpuzQhMQaxOT72dVCmVn6evD3.EMCMCeAK',
};

describe('passwords (native bcrypt)', () => {
  it('hashes at cost 12 in the $2b$ form and verifies only the right password', async () => {
    const hash = await hashPassword(PASSWORD);
    expect(hash).toMatch(/^\$2b\$12\$/);
    expect(passwordCost(hash)).toBe(BCRYPT_COST);
    expect(await verifyPassword(PASSWORD, hash)).toBe(true);
    expect(await verifyPassword('correct horse batterY', hash)).toBe(false);
    expect(await verifyPassword(PASSWORD, 'not a hash')).toBe(false);
  });

  it.each(Object.entries(BCRYPTJS_HASHES))(
    'verifies a %s hash from before the switch',
    async (_form, hash) => {
      expect(await verifyPassword(PASSWORD, hash)).toBe(true);
      expect(await verifyPassword('wrong', hash)).toBe(false);
    },
  );

  it('a user whose hash bcryptjs wrote still signs in', async () => {
    for (const [form, hash] of Object.entries(BCRYPTJS_HASHES)) {
      const email = `old-${form.replaceAll('$', '')}-${newId().toLowerCase()}@example.test`;
      await t.db.user.create({ data: { id: newId(), email, passwordHash: hash } });
      const res = await t.call('post', '/auth/login', { body: { email, password: PASSWORD } });
      expect(res.status, form).toBe(200);
      expect(res.body.accessToken, form).toEqual(expect.any(String));
    }
  });
});
