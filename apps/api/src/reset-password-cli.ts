// `pnpm admin:reset-password <email>`: sets a user's password (a lost admin password) straight in
// the database. The new password comes from CHRONOS_NEW_PASSWORD, else from standard input when it
// is not a terminal (`echo "$PW" | pnpm admin:reset-password a@b.c`); at a terminal without either,
// one is generated and printed once. Every session of the user is signed out.
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { text } from 'node:stream/consumers';
import { loadConfigOrExit } from '@chronos/config';
import { createDb } from '@chronos/db';
import { resetPassword } from './reset-password.ts';
import { passwordSchema } from './routes/auth.ts';

const NAME = 'admin:reset-password';

function fail(message: string): never {
  process.stderr.write(`${NAME}: ${message}\n`);
  process.exit(1);
}

const email = process.argv[2];
if (!email || process.argv.length > 3 || email.startsWith('-'))
  fail('usage: pnpm admin:reset-password <email>   (new password from CHRONOS_NEW_PASSWORD or stdin)');

let password = process.env.CHRONOS_NEW_PASSWORD;
let generated = false;
if (password === undefined || password === '') {
  if (process.stdin.isTTY) {
    password = randomBytes(18).toString('base64url');
    generated = true;
  } else {
    // One line: a trailing newline from `echo` is not part of the password.
    password = (await text(process.stdin)).replace(/\r?\n$/, '');
  }
}
const checked = passwordSchema.safeParse(password);
if (!checked.success) fail(`the new password ${checked.error.issues[0]?.message ?? 'is not valid'}`);

const config = loadConfigOrExit(NAME);
const db = createDb(config.databaseUrl, { applicationName: 'chronos-reset-password' });
try {
  const done = await resetPassword(db, {
    email,
    password: checked.data,
    origin: { osUser: userInfo().username, host: hostname() },
  });
  if (!done) fail(`no user has the e-mail ${JSON.stringify(email)}`);
  process.stdout.write(
    `${NAME}: password of ${done.email} set; every session of theirs is signed out\n` +
      (generated ? `new password (shown once): ${password}\n` : ''),
  );
} catch (err) {
  fail(`could not reset the password: ${(err as Error).message}`);
} finally {
  await db.$disconnect();
}
