import { createMasker, hasTemplate } from '@chronos/core';
import { invalidPayload } from '../errors.ts';
import { normalizeHost } from '../outbound-guard.ts';

export type DatabaseDialect = 'postgres' | 'mysql';

/**
 * TLS to the server: `disable` (plain TCP), `require` (encrypted, certificate not checked),
 * `verify-ca` (chain checked against the system CAs), `verify-full` (chain and host name).
 */
export type DatabaseTlsMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

/** A database URL taken apart. `password` is the only secret; {@link display} never holds it. */
export interface DatabaseTarget {
  dialect: DatabaseDialect;
  /** Lower case, no brackets. */
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  tls: DatabaseTlsMode;
  /** The URL with its password masked: what logs, outputs and errors show. */
  display: string;
  /** URL parameters this executor does not use (reported, not applied). */
  ignoredParams: string[];
}

export const PASSWORD_MASK = '***';

const SCHEMES: Record<string, DatabaseDialect> = {
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
  'mysql:': 'mysql',
  'mariadb:': 'mysql',
};
const DEFAULT_PORTS: Record<DatabaseDialect, number> = { postgres: 5432, mysql: 3306 };

/** Query parameters that may carry a secret, masked by {@link redactDatabaseUrl}. */
const SECRET_PARAMS = /^(password|pass|passwd|pwd|sslpassword|secret|token)$/i;

/** The libpq and MySQL spellings of TLS modes. */
const TLS_MODES: Record<string, DatabaseTlsMode> = {
  disable: 'disable',
  disabled: 'disable',
  allow: 'disable',
  prefer: 'disable',
  preferred: 'disable',
  false: 'disable',
  '0': 'disable',
  require: 'require',
  required: 'require',
  true: 'require',
  '1': 'require',
  'no-verify': 'require',
  'verify-ca': 'verify-ca',
  verify_ca: 'verify-ca',
  'verify-full': 'verify-full',
  verify_identity: 'verify-full',
  'verify-identity': 'verify-full',
};
const TLS_PARAMS = new Set(['sslmode', 'ssl-mode', 'ssl_mode', 'ssl']);

/**
 * `url` with its password (and any password-like query parameter) replaced by `***`. Works on
 * anything: a string that does not parse as a URL has everything between the user name and the
 * last `@` masked, so a password is never shown even in an error about a malformed URL.
 */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = PASSWORD_MASK;
    for (const key of [...parsed.searchParams.keys()]) {
      if (SECRET_PARAMS.test(key)) parsed.searchParams.set(key, PASSWORD_MASK);
    }
    return parsed.href;
  } catch {
    const authority = /^([a-z][a-z0-9+.-]*:\/\/[^:@/]*:)(.*)@/is.exec(url);
    if (authority) return `${authority[1]}${PASSWORD_MASK}@${url.slice(authority[0].length)}`;
    const at = url.lastIndexOf('@');
    return at < 0 ? url : `${PASSWORD_MASK}@${url.slice(at + 1)}`;
  }
}

const safeDecode = (text: string): string => {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
};

const decode = (text: string, what: string): string => {
  try {
    return decodeURIComponent(text);
  } catch {
    throw invalidPayload(`databaseUrl: the ${what} is not valid percent-encoding`);
  }
};

/**
 * Parses a resolved (template-free) database URL.
 * @throws PermanentJobError INVALID_PAYLOAD, its message free of the password
 */
export function parseDatabaseUrl(text: string): DatabaseTarget {
  if (hasTemplate(text)) throw invalidPayload('databaseUrl still holds an unresolved {{...}} template');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalidPayload(
      `databaseUrl ${redactDatabaseUrl(text)} is not a valid URL (percent-encode reserved characters such as / @ : in the password)`,
    );
  }
  // The password may recur elsewhere in the URL (as the database name, say): mask it there too.
  const display = createMasker([safeDecode(url.password)]).mask(redactDatabaseUrl(text));
  const dialect = SCHEMES[url.protocol.toLowerCase()];
  if (!dialect) {
    throw invalidPayload(
      `databaseUrl must use postgres://, postgresql://, mysql:// or mariadb://, not ${url.protocol}`,
    );
  }
  const host = normalizeHost(url.hostname);
  if (host === '') throw invalidPayload(`databaseUrl ${display} names no host`);
  const port = url.port === '' ? DEFAULT_PORTS[dialect] : Number(url.port);
  if (!(Number.isInteger(port) && port >= 1 && port <= 65_535)) {
    throw invalidPayload(`databaseUrl ${display} has an invalid port`);
  }
  const database = decode(url.pathname.replace(/^\//, ''), 'database name');
  if (database.includes('/')) throw invalidPayload(`databaseUrl ${display}: the path must be just /database`);

  let tls: DatabaseTlsMode = 'disable';
  const ignoredParams: string[] = [];
  let password = decode(url.password, 'password');
  for (const [key, value] of url.searchParams) {
    if (TLS_PARAMS.has(key.toLowerCase())) {
      const mode = TLS_MODES[value.toLowerCase()];
      if (!mode) {
        throw invalidPayload(
          `databaseUrl: unknown ${key} ${JSON.stringify(value)}; use disable, require, verify-ca or verify-full`,
        );
      }
      tls = mode;
    } else if (key.toLowerCase() === 'password' && password === '') {
      password = value;
    } else {
      ignoredParams.push(key);
    }
  }
  return {
    dialect,
    host,
    port,
    user: decode(url.username, 'user name'),
    password,
    database,
    tls,
    display,
    ignoredParams,
  };
}
