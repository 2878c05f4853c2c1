import {
  DATABASE_SQL_CONSTRUCTS,
  JOB_TYPES,
  RUNNABLE_JOB_TYPES,
  type DatabaseSqlConstruct,
  type JobTypeName,
  type RunnableJobType,
} from '@chronos/core';
import { z } from 'zod';
import { trustProxySetting, type TrustProxy } from './trust-proxy.ts';

const bool = (fallback: boolean) =>
  z
    .string()
    .trim()
    .toLowerCase()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      ctx.addIssue({ code: 'custom', message: `must be true or false (got "${v}")` });
      return z.NEVER;
    });

const int = (fallback: number, min: number, max: number) =>
  z
    .string()
    .trim()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      if (!/^-?\d+$/.test(v)) {
        ctx.addIssue({ code: 'custom', message: `must be a whole number (got "${v}")` });
        return z.NEVER;
      }
      const n = Number(v);
      if (n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be between ${min} and ${max} (got ${n})` });
        return z.NEVER;
      }
      return n;
    });

const url = (protocols: string[], fallback?: string) =>
  z
    .string()
    .trim()
    .optional()
    .transform((v, ctx) => {
      const value = v === undefined || v === '' ? fallback : v;
      if (value === undefined) return undefined;
      let parsed: URL;
      try {
        parsed = new URL(value);
      } catch {
        ctx.addIssue({ code: 'custom', message: `must be a URL (got "${redactUrl(value)}")` });
        return z.NEVER;
      }
      if (!protocols.includes(parsed.protocol)) {
        ctx.addIssue({
          code: 'custom',
          message: `must start with ${protocols.map((p) => `${p}//`).join(' or ')} (got "${parsed.protocol}//…")`,
        });
        return z.NEVER;
      }
      return value;
    });

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

const list = optionalString.transform((v) =>
  v === undefined
    ? []
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
);

function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Hides the password of a connection URL so it never reaches a log line. */
export function redactUrl(value: string): string {
  try {
    const u = new URL(value);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return value.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
  }
}

/** The environment every Chronos process reads, validated once at start. */
const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** `json` (one JSON object a line, for log shippers) or `pretty` (one readable line). */
  LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  DATABASE_URL: url(['postgresql:', 'postgres:'], 'postgresql://postgres@127.0.0.1:5432/chronos'),
  REDIS_URL: url(['redis:', 'rediss:'], 'redis://127.0.0.1:6379'),
  /** Prefix of every Redis key Chronos writes (queues included); tests use their own. */
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'may hold only letters, digits, "_" and "-"')
    .default('chronos'),
  HOST: z.string().default('0.0.0.0'),
  PORT: int(3000, 0, 65535),
  PUBLIC_URL: url(['http:', 'https:']),
  JWT_SECRET: optionalString.refine(
    (v) => v === undefined || v.length >= 32,
    'must be at least 32 characters',
  ),
  /** 32 bytes as 64 hex characters or base64; encrypts sensitive variables and webhook secrets. */
  ENCRYPTION_KEY: optionalString.refine(
    (v) => v === undefined || /^[0-9a-fA-F]{64}$/.test(v) || Buffer.from(v, 'base64').length === 32,
    'must be 32 bytes: 64 hex characters or 44 base64 characters',
  ),
  AUTH_MODE: z.enum(['local', 'oidc']).default('local'),
  OIDC_ISSUER: url(['http:', 'https:']),
  OIDC_AUDIENCE: optionalString,
  /** JWKS address; discovered from the issuer's `.well-known/openid-configuration` when unset. */
  OIDC_JWKS_URL: url(['http:', 'https:']),
  /** Dotted path of the token claim that lists Chronos role names (Keycloak: realm roles). */
  OIDC_ROLES_CLAIM: z.string().default('realm_access.roles'),
  /** Lifetime of access tokens (at most 15 min). */
  ACCESS_TOKEN_TTL_SECONDS: int(900, 30, 900),
  /** Lifetime of refresh tokens (each use rotates it). */
  REFRESH_TOKEN_TTL_SECONDS: int(1_209_600, 60, 31_536_000),
  /** Failed sign-ins per account (and per client IP, ×4) within LOGIN_WINDOW_SECONDS before 429. */
  LOGIN_MAX_FAILURES: int(5, 1, 1000),
  LOGIN_WINDOW_SECONDS: int(900, 1, 86_400),
  /** Largest accepted request body. */
  API_BODY_LIMIT_BYTES: int(1_048_576, 1024, 104_857_600),
  /** Requests one API process serves at once; more are answered 503 with Retry-After at once. */
  API_MAX_IN_FLIGHT: int(256, 1, 100_000),
  /** Proxies whose X-Forwarded-For names the client: none (default), a hop count, or addresses. */
  TRUST_PROXY: trustProxySetting,
  CORS_ORIGINS: list,
  CHRONOS_ADMIN_EMAIL: z.email('must be an e-mail address').default('admin@chronos.local'),
  CHRONOS_ADMIN_PASSWORD: optionalString.refine(
    (v) => v === undefined || v.length >= 8,
    'must be at least 8 characters',
  ),
  /** Where the one-command start keeps local state (embedded PostgreSQL, Redis, S3 data). */
  CHRONOS_DATA_DIR: z.string().default('.data'),
  S3_ENDPOINT: url(['http:', 'https:']),
  S3_REGION: z.string().default('us-east-1'),
  S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name')
    .default('chronos'),
  S3_ACCESS_KEY: z.string().default('S3RVER'),
  S3_SECRET_KEY: z.string().default('S3RVER'),
  /** Port of the local S3 server started when S3_ENDPOINT is unset. */
  S3_LOCAL_PORT: int(4568, 0, 65535),
  SMTP_URL: url(['smtp:', 'smtps:'], 'smtp://127.0.0.1:1025'),
  SMTP_FROM: z.string().default('chronos@localhost'),
  RABBITMQ_URL: url(['amqp:', 'amqps:'], 'amqp://guest:guest@127.0.0.1:5672'),
  KAFKA_BROKERS: list,
  WORKER_TYPES: z
    .string()
    .default('all')
    .transform((v, ctx) => {
      const items = v
        .split(',')
        .map((s) => s.trim().toUpperCase())
        .filter(Boolean);
      // "all": every type this version can run. A type without an executor is refused rather
      // than served: its runs could only fail, and a worker claiming it would be a lie.
      if (items.length === 0 || items.includes('ALL')) return [...RUNNABLE_JOB_TYPES];
      const unknown = items.filter((t) => !(JOB_TYPES as readonly string[]).includes(t));
      const notRunnable = items.filter(
        (t) =>
          (JOB_TYPES as readonly string[]).includes(t) &&
          !(RUNNABLE_JOB_TYPES as readonly string[]).includes(t),
      );
      if (unknown.length > 0 || notRunnable.length > 0) {
        ctx.addIssue({
          code: 'custom',
          message: [
            unknown.length > 0 ? `unknown job type ${unknown.join(', ')}` : '',
            notRunnable.length > 0
              ? `${notRunnable.join(', ')} jobs cannot run in this version (no executor)`
              : '',
          ]
            .filter(Boolean)
            .join('; ')
            .concat(`; use "all" or a list of ${RUNNABLE_JOB_TYPES.join(', ')}`),
        });
        return z.NEVER;
      }
      return [...new Set(items)] as RunnableJobType[];
    }),
  /** `10`, or a default plus per-type values: `10,HTTP=50,SCRIPT=2`. */
  WORKER_CONCURRENCY: z
    .string()
    .default('10')
    .transform((v, ctx) => {
      const out: { default: number; perType: Partial<Record<JobTypeName, number>> } = {
        default: 10,
        perType: {},
      };
      for (const part of v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)) {
        const m = /^(?:([A-Za-z_]+)=)?(\d+)$/.exec(part);
        const n = Number(m?.[2]);
        if (!m || n < 1 || n > 1000) {
          ctx.addIssue({
            code: 'custom',
            message: `must be a number 1-1000 or TYPE=number items (got "${part}")`,
          });
          return z.NEVER;
        }
        if (m[1] === undefined) out.default = n;
        else {
          const type = m[1].toUpperCase();
          if (!(JOB_TYPES as readonly string[]).includes(type)) {
            ctx.addIssue({ code: 'custom', message: `unknown job type ${type} in "${part}"` });
            return z.NEVER;
          }
          out.perType[type as JobTypeName] = n;
        }
      }
      return out;
    }),
  /** How long a worker's lock on a run lasts without renewal; a dead worker's runs are taken over after it. */
  WORKER_LOCK_DURATION_MS: int(30_000, 1000, 3_600_000),
  /** How often workers look for runs whose worker stopped renewing its lock. */
  WORKER_STALLED_INTERVAL_MS: int(30_000, 500, 3_600_000),
  /** Connections of a worker's Prisma pool (its transactional paths); 0: derived from its concurrency. */
  WORKER_DB_POOL_SIZE: int(0, 0, 1000),
  RUN_LOG_MAX_LINES: int(10_000, 1, 10_000_000),
  RUN_LOG_MAX_BYTES: int(5 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
  WORKER_ID: optionalString,
  SHUTDOWN_GRACE_SECONDS: int(30, 0, 3600),
  DEFAULT_RUN_TIMEOUT_SECONDS: int(3600, 1, 7 * 24 * 3600),
  DEFAULT_TIMEZONE: z
    .string()
    .default('UTC')
    .superRefine((v, ctx) => {
      if (!isValidTimeZone(v))
        ctx.addIssue({
          code: 'custom',
          message: `must be an IANA time zone such as Europe/Berlin (got "${v}")`,
        });
    }),
  SCHEDULER_TICK_MS: int(1000, 50, 60_000),
  SCHEDULER_HORIZON_SECONDS: int(60, 1, 3600),
  SCHEDULER_BATCH_SIZE: int(500, 1, 100_000),
  /** Port of the scheduler's /metrics and /healthz (0: any free port). */
  SCHEDULER_METRICS_PORT: int(9464, 0, 65535),
  SCHEDULER_RECONCILE_MS: int(5000, 100, 600_000),
  SCHEDULER_INSTANCE_ID: optionalString,
  MISFIRE_THRESHOLD_SECONDS: int(60, 0, 7 * 24 * 3600),
  FILE_JOBS_ROOT: optionalString,
  /** Guarded SQL constructs DATABASE jobs may use (`CALL,DBLINK`, or `all`); none by default. */
  DATABASE_ALLOWED_SQL: list.transform((items, ctx) => {
    if (items.some((i) => i.toLowerCase() === 'all')) return [...DATABASE_SQL_CONSTRUCTS];
    const names = items.map((i) => i.toUpperCase());
    const unknown = names.filter((n) => !(DATABASE_SQL_CONSTRUCTS as readonly string[]).includes(n));
    if (unknown.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown SQL construct ${unknown.join(', ')}; use "all" or a list of ${DATABASE_SQL_CONSTRUCTS.join(', ')}`,
      });
      return z.NEVER;
    }
    return [...new Set(names)] as DatabaseSqlConstruct[];
  }),
  /** Let DATABASE jobs connect as a superuser (or an account that can act as one). */
  DATABASE_ALLOW_SUPERUSER: bool(false),
  SCRIPT_ENABLED: bool(true),
  /**
   * Run SCRIPT jobs as this system user (a root worker; never root). Unset: `chronos-script`,
   * created when missing.
   */
  SCRIPT_RUN_AS: optionalString,
  /**
   * `namespaces`: each SCRIPT run in PID and mount namespaces of its own (a root worker; others
   * refuse SCRIPT runs). `none`: limits only, as the worker's own user on a non-root worker.
   */
  SCRIPT_ISOLATION: z
    .enum(['namespaces', 'none'], { error: 'must be namespaces or none' })
    .default('namespaces'),
  /** Host paths sandboxed scripts see, read-only unless suffixed `:rw`: `/opt/tools,/data/out:rw`. */
  SCRIPT_VISIBLE_PATHS: list.superRefine((paths, ctx) => {
    for (const p of paths) {
      const path = p.replace(/:r[ow]$/, '');
      if (!path.startsWith('/') || /^\/+$/.test(path))
        ctx.addIssue({ code: 'custom', message: `must list absolute paths other than / (got "${p}")` });
    }
  }),
  /** Paths sandboxed scripts never see (besides CHRONOS_DATA_DIR and the worker's own folder). */
  SCRIPT_HIDDEN_PATHS: list.superRefine((paths, ctx) => {
    for (const p of paths) {
      if (!p.startsWith('/'))
        ctx.addIssue({ code: 'custom', message: `must list absolute paths (got "${p}")` });
    }
  }),
  /** The default Redis of CACHE jobs (REDIS_URL when unset; the queue keys are never touched). */
  CACHE_REDIS_URL: url(['redis:', 'rediss:']),
  HTTP_ALLOW_HOSTS: list,
  HTTP_ALLOW_CIDRS: list,
});

type Env = z.output<typeof envSchema>;

/** The validated configuration: plain, typed and frozen. */
export interface Config {
  readonly env: Env['NODE_ENV'];
  readonly isProduction: boolean;
  readonly logLevel: Env['LOG_LEVEL'];
  /**
   * LOG_FORMAT, else `pretty` in development (a person reads the terminal) and `json` in
   * production and test (log shippers and tests read the lines).
   */
  readonly logFormat: 'json' | 'pretty';
  readonly databaseUrl: string;
  readonly redis: { readonly url: string; readonly prefix: string };
  readonly http: { readonly host: string; readonly port: number; readonly publicUrl: string | undefined };
  readonly auth: {
    readonly mode: Env['AUTH_MODE'];
    readonly jwtSecret: string | undefined;
    readonly oidcIssuer: string | undefined;
    readonly oidcAudience: string | undefined;
    readonly oidcJwksUrl: string | undefined;
    readonly oidcRolesClaim: string;
    readonly accessTokenTtlSeconds: number;
    readonly refreshTokenTtlSeconds: number;
    readonly loginMaxFailures: number;
    readonly loginWindowSeconds: number;
    readonly corsOrigins: readonly string[];
  };
  readonly bodyLimitBytes: number;
  /** API_MAX_IN_FLIGHT: requests served at once by one API process (probes not counted). */
  readonly maxInFlight: number;
  /** TRUST_PROXY, in the form Express' `trust proxy` takes. */
  readonly trustProxy: TrustProxy;
  readonly encryptionKey: string | undefined;
  readonly admin: { readonly email: string; readonly password: string | undefined };
  readonly dataDir: string;
  readonly s3: {
    readonly endpoint: string | undefined;
    readonly region: string;
    readonly bucket: string;
    readonly accessKey: string;
    readonly secretKey: string;
    readonly localPort: number;
  };
  readonly smtp: { readonly url: string; readonly from: string };
  readonly rabbitmqUrl: string;
  readonly kafkaBrokers: readonly string[];
  readonly worker: {
    /** The types served: only types this version can run (`RUNNABLE_JOB_TYPES`). */
    readonly types: readonly RunnableJobType[];
    /** Parallel runs per served type and process. */
    readonly concurrency: {
      readonly default: number;
      readonly perType: Readonly<Partial<Record<JobTypeName, number>>>;
    };
    readonly lockDurationMs: number;
    readonly stalledIntervalMs: number;
    /** Connections of the worker's Prisma pool; undefined: derived from its total concurrency. */
    readonly dbPoolSize: number | undefined;
    readonly runLogMaxLines: number;
    readonly runLogMaxBytes: number;
    readonly id: string | undefined;
    readonly shutdownGraceMs: number;
    readonly defaultRunTimeoutSeconds: number;
    readonly fileJobsRoot: string | undefined;
    /** SQL constructs DATABASE jobs may use (every other guarded one is refused). */
    readonly databaseAllowedSql: readonly DatabaseSqlConstruct[];
    readonly databaseAllowSuperuser: boolean;
    readonly scriptEnabled: boolean;
    readonly scriptRunAs: string | undefined;
    readonly scriptIsolation: 'namespaces' | 'none';
    /** SCRIPT_VISIBLE_PATHS as written (`/path` or `/path:rw`). */
    readonly scriptVisiblePaths: readonly string[];
    readonly scriptHiddenPaths: readonly string[];
    readonly cacheRedisUrl: string | undefined;
    readonly httpAllowHosts: readonly string[];
    readonly httpAllowCidrs: readonly string[];
  };
  readonly scheduler: {
    readonly tickMs: number;
    readonly horizonSeconds: number;
    readonly batchSize: number;
    readonly metricsPort: number;
    readonly reconcileMs: number;
    readonly instanceId: string | undefined;
    readonly misfireThresholdSeconds: number;
    readonly defaultTimezone: string;
  };
}

/** Every variable `loadConfig` reads; docker-compose.yml and README must use only these. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(envSchema.shape);

/** One bad variable: its name and why it is wrong. */
export interface ConfigIssue {
  readonly variable: string;
  readonly message: string;
}

/** Thrown by `loadConfig` with every bad variable; `message` has one line per variable. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(issues.map((i) => `${i.variable} ${i.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Parses and validates the environment once. Only `apps/* /src/main.ts` call this; everything else
 * receives values as arguments.
 * @throws ConfigError listing every bad variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => ({
        variable: String(issue.path[0] ?? 'environment'),
        message: issue.message.startsWith('Invalid option')
          ? `must be one of ${'values' in issue ? (issue.values as unknown[]).join(', ') : 'the allowed values'}`
          : issue.message,
      })),
    );
  }
  const e = parsed.data;
  const issues: ConfigIssue[] = [];
  if (e.NODE_ENV === 'production') {
    if (e.AUTH_MODE === 'local' && !e.JWT_SECRET)
      issues.push({ variable: 'JWT_SECRET', message: 'is required in production (32+ random characters)' });
    if (!e.ENCRYPTION_KEY)
      issues.push({
        variable: 'ENCRYPTION_KEY',
        message: 'is required in production (32 bytes, hex or base64)',
      });
  }
  if (e.AUTH_MODE === 'oidc' && !e.OIDC_ISSUER)
    issues.push({ variable: 'OIDC_ISSUER', message: 'is required when AUTH_MODE=oidc' });
  // Without it, a token the provider issued to any other application would be accepted here.
  if (e.AUTH_MODE === 'oidc' && !e.OIDC_AUDIENCE)
    issues.push({ variable: 'OIDC_AUDIENCE', message: 'is required when AUTH_MODE=oidc' });
  if (issues.length > 0) throw new ConfigError(issues);

  const config: Config = {
    env: e.NODE_ENV,
    isProduction: e.NODE_ENV === 'production',
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT ?? (e.NODE_ENV === 'development' ? 'pretty' : 'json'),
    databaseUrl: e.DATABASE_URL as string,
    redis: { url: e.REDIS_URL as string, prefix: e.REDIS_PREFIX },
    http: { host: e.HOST, port: e.PORT, publicUrl: e.PUBLIC_URL },
    auth: {
      mode: e.AUTH_MODE,
      jwtSecret: e.JWT_SECRET,
      oidcIssuer: e.OIDC_ISSUER,
      oidcAudience: e.OIDC_AUDIENCE,
      oidcJwksUrl: e.OIDC_JWKS_URL,
      oidcRolesClaim: e.OIDC_ROLES_CLAIM,
      accessTokenTtlSeconds: e.ACCESS_TOKEN_TTL_SECONDS,
      refreshTokenTtlSeconds: e.REFRESH_TOKEN_TTL_SECONDS,
      loginMaxFailures: e.LOGIN_MAX_FAILURES,
      loginWindowSeconds: e.LOGIN_WINDOW_SECONDS,
      corsOrigins: e.CORS_ORIGINS,
    },
    bodyLimitBytes: e.API_BODY_LIMIT_BYTES,
    maxInFlight: e.API_MAX_IN_FLIGHT,
    trustProxy: e.TRUST_PROXY,
    encryptionKey: e.ENCRYPTION_KEY,
    admin: { email: e.CHRONOS_ADMIN_EMAIL, password: e.CHRONOS_ADMIN_PASSWORD },
    dataDir: e.CHRONOS_DATA_DIR,
    s3: {
      endpoint: e.S3_ENDPOINT,
      region: e.S3_REGION,
      bucket: e.S3_BUCKET,
      accessKey: e.S3_ACCESS_KEY,
      secretKey: e.S3_SECRET_KEY,
      localPort: e.S3_LOCAL_PORT,
    },
    smtp: { url: e.SMTP_URL as string, from: e.SMTP_FROM },
    rabbitmqUrl: e.RABBITMQ_URL as string,
    kafkaBrokers: e.KAFKA_BROKERS,
    worker: {
      types: e.WORKER_TYPES,
      concurrency: e.WORKER_CONCURRENCY,
      lockDurationMs: e.WORKER_LOCK_DURATION_MS,
      stalledIntervalMs: e.WORKER_STALLED_INTERVAL_MS,
      dbPoolSize: e.WORKER_DB_POOL_SIZE === 0 ? undefined : e.WORKER_DB_POOL_SIZE,
      runLogMaxLines: e.RUN_LOG_MAX_LINES,
      runLogMaxBytes: e.RUN_LOG_MAX_BYTES,
      id: e.WORKER_ID,
      shutdownGraceMs: e.SHUTDOWN_GRACE_SECONDS * 1000,
      defaultRunTimeoutSeconds: e.DEFAULT_RUN_TIMEOUT_SECONDS,
      fileJobsRoot: e.FILE_JOBS_ROOT,
      databaseAllowedSql: e.DATABASE_ALLOWED_SQL,
      databaseAllowSuperuser: e.DATABASE_ALLOW_SUPERUSER,
      scriptEnabled: e.SCRIPT_ENABLED,
      scriptRunAs: e.SCRIPT_RUN_AS,
      scriptIsolation: e.SCRIPT_ISOLATION,
      scriptVisiblePaths: e.SCRIPT_VISIBLE_PATHS,
      scriptHiddenPaths: e.SCRIPT_HIDDEN_PATHS,
      cacheRedisUrl: e.CACHE_REDIS_URL,
      httpAllowHosts: e.HTTP_ALLOW_HOSTS,
      httpAllowCidrs: e.HTTP_ALLOW_CIDRS,
    },
    scheduler: {
      tickMs: e.SCHEDULER_TICK_MS,
      horizonSeconds: e.SCHEDULER_HORIZON_SECONDS,
      batchSize: e.SCHEDULER_BATCH_SIZE,
      metricsPort: e.SCHEDULER_METRICS_PORT,
      reconcileMs: e.SCHEDULER_RECONCILE_MS,
      instanceId: e.SCHEDULER_INSTANCE_ID,
      misfireThresholdSeconds: e.MISFIRE_THRESHOLD_SECONDS,
      defaultTimezone: e.DEFAULT_TIMEZONE,
    },
  };
  return deepFreeze(config);
}

/**
 * For `main.ts`: loads the config or prints one line per bad variable (prefixed with the app name)
 * and exits with status 78 (EX_CONFIG).
 */
export function loadConfigOrExit(app: string, env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const issue of err.issues)
        process.stderr.write(`${app}: invalid configuration: ${issue.variable} ${issue.message}\n`);
      process.exit(78);
    }
    throw err;
  }
}
