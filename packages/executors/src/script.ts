import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants, tmpdir } from 'node:os';
import { chown, mkdtemp, realpath, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import {
  PermanentJobError,
  fieldIssues,
  scriptLimitsSchema,
  scriptPayloadSchema,
  type ScriptInterpreter,
  type ScriptLimits,
  type ScriptPayloadInput,
} from '@chronos/core';
import { invalidPayload } from './errors.ts';
import { ScriptExitError, ScriptKilledError, ScriptLimitError } from './script/errors.ts';
import { LineSplitter, TailBuffer } from './script/output.ts';
import {
  createWorkdir,
  ensureSystemUser,
  findExecutable,
  killRunProcesses,
  lookupUser,
  removeWorkdir,
  signalGroup,
  type UnixUser,
} from './script/process.ts';
import {
  SANDBOX_SYSTEM_PATHS,
  SANDBOX_TOOLS,
  coverablePaths,
  parseSandboxReport,
  sandboxCommand,
  sandboxInstructions,
  type SandboxReport,
  type SandboxTool,
  type ScriptVisiblePath,
} from './script/sandbox.ts';
import type { ExecContext, ExecResult, Executor } from './types.ts';

export { SCRIPT_ERROR_CODES, ScriptExitError, ScriptKilledError, ScriptLimitError } from './script/errors.ts';
export type { ScriptErrorCode } from './script/errors.ts';
export { SANDBOX_SYSTEM_PATHS, parseVisiblePath } from './script/sandbox.ts';
export type { ScriptVisiblePath } from './script/sandbox.ts';

/**
 * How SCRIPT runs are isolated (SCRIPT_ISOLATION): `namespaces` — PID and mount namespaces of
 * their own, as an unprivileged user; `none` — a process with limits only (trusted scripts).
 */
export const SCRIPT_ISOLATIONS = ['namespaces', 'none'] as const;
export type ScriptIsolation = (typeof SCRIPT_ISOLATIONS)[number];

/** The account a root worker runs scripts as when SCRIPT_RUN_AS names none; created when missing. */
export const DEFAULT_SCRIPT_USER = 'chronos-script';

/** Every limit, as the executor applies it. */
export type ResolvedScriptLimits = Required<ScriptLimits>;

/** The limits of a job that sets none. */
export const DEFAULT_SCRIPT_LIMITS: Readonly<ResolvedScriptLimits> = Object.freeze({
  cpuSeconds: 300,
  memoryMb: 1024,
  maxProcesses: 128,
  maxFileSizeMb: 100,
  maxOutputBytes: 10 * 1024 * 1024,
});

/** The PATH scripts get, and where interpreters and tools are looked up. */
export const SCRIPT_SAFE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ScriptExecutorOptions {
  /** SCRIPT_ENABLED: when false every run fails with SCRIPT_DISABLED. */
  enabled: boolean;
  /**
   * SCRIPT_RUN_AS: the user scripts run as (a name, a uid, or `uid:gid`; never root); needs a root
   * worker. Unset, a root worker runs scripts as {@link DEFAULT_SCRIPT_USER}, created
   * (`useradd --system`) when missing; a named user must exist.
   * @defaultValue null
   */
  runAs?: string | null;
  /**
   * SCRIPT_ISOLATION. `namespaces`: every run in PID and mount namespaces of its own, as the script
   * user, seeing the system folders, its working directory and `visiblePaths` only, and dying with
   * the worker; needs a root worker — any other refuses every run (ISOLATION_UNAVAILABLE).
   * `none`: a process with limits only, as the script user on a root worker and as the worker's own
   * user otherwise (then a script can read the worker's environment: trusted scripts only).
   * @defaultValue 'namespaces'
   */
  isolation?: ScriptIsolation;
  /** SCRIPT_VISIBLE_PATHS: more host paths sandboxed scripts see (at the same path). */
  visiblePaths?: readonly ScriptVisiblePath[];
  /**
   * Paths a sandboxed script never sees, even inside a system or visible path: the data folder,
   * the worker's own folder, SCRIPT_HIDDEN_PATHS. A visible path inside a hidden one stays visible.
   */
  hiddenPaths?: readonly string[];
  /** Size of the empty /tmp and /dev/shm a sandboxed script gets (tmpfs: memory). @defaultValue 64 */
  tmpSizeMb?: number;
  /** The deployment's limits for jobs that set none (each job may set its own within the schema's bounds). */
  defaults?: ScriptLimits;
  /** Where each run's working directory is made. @defaultValue os.tmpdir() */
  tmpRoot?: string;
  /**
   * Interpreter binaries by name, instead of looking them up in `path`; `null` makes an interpreter
   * unavailable on this worker.
   */
  interpreters?: Partial<Record<ScriptInterpreter, string | null>>;
  /** The PATH scripts get; interpreters, prlimit, setpriv and nice are looked up in it. @defaultValue SCRIPT_SAFE_PATH */
  path?: string;
  /** Niceness of the scripts' processes (via `nice`); 0 leaves it alone. @defaultValue 10 */
  niceness?: number;
  /** Between SIGTERM and SIGKILL of the process group on abort. @defaultValue 2000 */
  killGraceMs?: number;
  /** Output lines passed to the run log; the rest is counted, not logged. @defaultValue 10_000 */
  maxLogLines?: number;
  /** Longest line logged; the rest of a longer line is dropped. @defaultValue 8192 */
  maxLineBytes?: number;
  /** Bytes of stdout kept as `stdoutTail` (and of stderr in failures). @defaultValue 4096 */
  tailBytes?: number;
}

/** The SCRIPT executor, with a check a worker runs at start. */
export type ScriptExecutor = Executor<ScriptPayloadInput> & {
  /**
   * Why SCRIPT runs would be refused on this worker whatever the job (not root, no script user,
   * a sandbox tool missing), or null: a worker says so at start instead of at each run.
   */
  preflight(): Promise<string | null>;
};

/** What a successful SCRIPT run outputs. */
export interface ScriptOutput {
  exitCode: 0;
  /** The last `tailBytes` of stdout. */
  stdoutTail: string;
  stdoutBytes: number;
  stderrBytes: number;
  durationMs: number;
}

const SCRIPT_FILES: Record<ScriptInterpreter, { file: string; args: readonly string[] }> = {
  bash: { file: 'script.sh', args: [] },
  sh: { file: 'script.sh', args: [] },
  node: { file: 'script.js', args: [] },
  // Unbuffered, so lines reach the run log as they are printed.
  python3: { file: 'script.py', args: ['-u'] },
};

const MIB = 1024 * 1024;

function signalName(n: number): string | undefined {
  return Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0];
}

/** The last non-empty line of a stderr tail, for an error message. */
function lastLine(text: string): string {
  const line = text.trimEnd().split('\n').pop() ?? '';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/**
 * The SCRIPT executor: each run is a process tree with its own process group, a fresh working
 * directory, an environment holding only what the job declares, and setrlimit limits, run as an
 * unprivileged user in PID and mount namespaces of its own (script/sandbox.ts) unless isolation is
 * `none`; see the README for what this does and does not isolate.
 */
export function createScriptExecutor(options: ScriptExecutorOptions): ScriptExecutor {
  const searchPath = options.path ?? SCRIPT_SAFE_PATH;
  const defaults: ResolvedScriptLimits = {
    ...DEFAULT_SCRIPT_LIMITS,
    ...definedOnly(scriptLimitsSchema.parse(options.defaults ?? {})),
  };
  const niceness = options.niceness ?? 10;
  const killGraceMs = options.killGraceMs ?? 2000;
  const maxLogLines = options.maxLogLines ?? 10_000;
  const maxLineBytes = options.maxLineBytes ?? 8192;
  const tailBytes = options.tailBytes ?? 4096;
  const runAs = options.runAs ?? null;
  const isolation = options.isolation ?? 'namespaces';
  const visiblePaths = options.visiblePaths ?? [];
  const hiddenPaths = options.hiddenPaths ?? [];
  const tmpSizeMb = options.tmpSizeMb ?? 64;
  for (const p of [...visiblePaths.map((v) => v.path), ...hiddenPaths]) {
    if (!isAbsolute(p)) throw new Error(`script paths must be absolute: ${JSON.stringify(p)}`);
  }

  // Looked up once per executor: a binary installed later needs a worker restart.
  const found = new Map<string, Promise<string | null>>();
  const tool = (name: string): Promise<string | null> => {
    let p = found.get(name);
    if (!p) found.set(name, (p = findExecutable(name, searchPath)));
    return p;
  };
  let user: Promise<UnixUser> | undefined;

  async function interpreterPath(name: ScriptInterpreter): Promise<string> {
    const override = options.interpreters?.[name];
    const path = override === undefined ? await tool(name) : override && (await tool(override));
    if (!path) {
      throw new PermanentJobError(
        override === null
          ? `the ${name} interpreter is not available on this worker`
          : `the ${name} interpreter is not installed on this worker (looked for ${override ?? `${name} in ${searchPath}`})`,
        'INTERPRETER_MISSING',
      );
    }
    return path;
  }

  /**
   * Who the script runs as: null for the worker's own user (only with isolation `none` on a
   * non-root worker). Never root.
   */
  async function scriptUser(): Promise<UnixUser | null> {
    const uid = process.getuid?.();
    if (uid !== 0) {
      if (isolation === 'namespaces') {
        throw new PermanentJobError(
          `SCRIPT runs need a root worker: scripts run as another user (${runAs ?? DEFAULT_SCRIPT_USER}) in PID and mount namespaces of their own, and this worker runs as uid ${uid}. Run it as root, or set SCRIPT_ISOLATION=none to run trusted scripts as the worker's own user (they can then read the worker's environment, secrets included)`,
          'ISOLATION_UNAVAILABLE',
        );
      }
      if (runAs !== null) {
        throw new PermanentJobError(
          `SCRIPT_RUN_AS=${runAs} needs a worker running as root; this one runs as uid ${uid}`,
          'RUN_AS_FAILED',
        );
      }
      return null;
    }
    user ??= (async () => {
      const found =
        runAs === null
          ? await ensureSystemUser(DEFAULT_SCRIPT_USER, searchPath)
          : await lookupUser(runAs, searchPath);
      if (found.uid === 0 || found.gid === 0) {
        throw new Error(
          `${found.name} is root (uid ${found.uid}, gid ${found.gid}); scripts never run as root`,
        );
      }
      return found;
    })();
    try {
      return await user;
    } catch (err) {
      user = undefined;
      const who = runAs === null ? `the script user ${DEFAULT_SCRIPT_USER}` : `SCRIPT_RUN_AS=${runAs}`;
      throw new PermanentJobError(`${who}: ${(err as Error).message}`, 'RUN_AS_FAILED', { cause: err });
    }
  }

  /** The programs of the namespace sandbox, each found in `path`. */
  /** The programs of the namespace sandbox, each found in `path`; refuses when one is missing. */
  async function foundSandboxTools(): Promise<Record<SandboxTool, string>> {
    const tools = {} as Record<SandboxTool, string>;
    const missing: string[] = [];
    for (const name of SANDBOX_TOOLS) {
      const found = await tool(name);
      if (found) tools[name] = found;
      else missing.push(name);
    }
    if (missing.length > 0) {
      throw new PermanentJobError(
        `the script sandbox needs ${missing.join(', ')} (util-linux, mount, perl-base) in ${searchPath}; or set SCRIPT_ISOLATION=none`,
        'ISOLATION_UNAVAILABLE',
      );
    }
    return tools;
  }

  /** The sandbox's programs, with the interpreter checked to be inside what the script sees. */
  async function sandboxTools(interpreter: string): Promise<Record<SandboxTool, string>> {
    const tools = await foundSandboxTools();
    // The interpreter must be inside what the script sees, or nothing could run it there.
    const real = await realpath(interpreter);
    const seen = [...SANDBOX_SYSTEM_PATHS, ...visiblePaths.map((v) => v.path)];
    if (!seen.some((dir) => real === dir || real.startsWith(`${dir}/`))) {
      throw new PermanentJobError(
        `the interpreter ${real} lies outside what sandboxed scripts see (${SANDBOX_SYSTEM_PATHS.join(', ')}); add its folder to SCRIPT_VISIBLE_PATHS`,
        'ISOLATION_UNAVAILABLE',
      );
    }
    return tools;
  }

  async function preflight(): Promise<string | null> {
    if (!options.enabled) return null;
    try {
      // The checks every run makes before its interpreter is known: same functions, same messages.
      await scriptUser();
      if (isolation === 'namespaces') await foundSandboxTools();
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  }

  return Object.assign(runScript, { preflight });

  async function runScript(input: ScriptPayloadInput, ctx: ExecContext): Promise<ExecResult> {
    if (!options.enabled) {
      throw new PermanentJobError(
        'SCRIPT jobs are disabled on this deployment (SCRIPT_ENABLED=false)',
        'SCRIPT_DISABLED',
      );
    }
    const parsed = scriptPayloadSchema.safeParse(input);
    if (!parsed.success) {
      const issues = fieldIssues(parsed.error);
      throw invalidPayload(
        `invalid SCRIPT payload: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      );
    }
    const payload = parsed.data;
    const limits: ResolvedScriptLimits = { ...defaults, ...definedOnly(payload.metadata?.limits ?? {}) };
    const interpreter = await interpreterPath(payload.scriptInterpreter);
    const prlimit = await tool('prlimit');
    if (!prlimit) {
      throw new PermanentJobError(
        `prlimit (util-linux) is not installed in ${searchPath}: scripts cannot run without limits`,
        'PRLIMIT_MISSING',
      );
    }
    const setpriv = await tool('setpriv');
    const nice = niceness !== 0 ? await tool('nice') : null;
    const owner = await scriptUser();
    const sandbox = isolation === 'namespaces' ? await sandboxTools(interpreter) : null;
    if (ctx.signal.aborted) throw ctx.signal.reason;

    const tmpRoot = options.tmpRoot ?? tmpdir();
    const workdir = await createWorkdir(tmpRoot, owner);
    let root: string | undefined;
    try {
      const { file, args } = SCRIPT_FILES[payload.scriptInterpreter];
      const scriptFile = join(workdir, file);
      await writeFile(scriptFile, payload.scriptContent, { mode: 0o600 });
      if (owner) await chown(scriptFile, owner.uid, owner.gid);

      const env: Record<string, string> = {
        PATH: searchPath,
        HOME: workdir,
        TMPDIR: workdir,
        LANG: 'C.UTF-8',
        ...payload.scriptEnv,
        CHRONOS_RUN_ID: ctx.runId,
        CHRONOS_JOB_ID: ctx.jobId,
        CHRONOS_ATTEMPT: String(ctx.attempt),
        CHRONOS_IDEMPOTENCY_KEY: ctx.idempotencyKey,
      };
      // prlimit sets the limits on itself, then each program execs the next: one process, one pid.
      const command = [
        prlimit,
        `--cpu=${limits.cpuSeconds}:${limits.cpuSeconds + 2}`,
        `--data=${limits.memoryMb * MIB}`,
        `--nproc=${limits.maxProcesses}`,
        `--fsize=${limits.maxFileSizeMb * MIB}`,
        '--core=0',
        '--',
        // no_new_privs: setuid binaries (su, sudo, mount) no longer raise privileges. Without a
        // sandbox, the parent-death signal at least ends the script's first process with the worker.
        ...(setpriv ? [setpriv, '--no-new-privs', ...(sandbox ? [] : ['--pdeathsig', 'KILL']), '--'] : []),
        ...(nice ? [nice, '-n', String(niceness)] : []),
        interpreter,
        ...args,
        scriptFile,
      ];
      const who = owner?.name ?? `uid ${process.getuid?.()}`;
      if (sandbox && owner) {
        root = await mkdtemp(join(tmpRoot, 'chronos-sandbox-'));
        const { covered } = coverablePaths(hiddenPaths, [
          ...SANDBOX_SYSTEM_PATHS,
          ...visiblePaths.map((v) => v.path),
          workdir,
        ]);
        let instructions: Buffer;
        try {
          instructions = sandboxInstructions({
            root,
            workdir,
            uid: owner.uid,
            gid: owner.gid,
            tmpSizeMb,
            visible: visiblePaths,
            hidden: covered,
            tools: sandbox,
            env,
            command,
          });
        } catch (err) {
          throw invalidPayload(`invalid SCRIPT payload: ${(err as Error).message}`);
        }
        const start = sandboxCommand(sandbox);
        // The sandbox's programs run as root with an empty environment; the script gets `env`.
        return await supervise(
          { ...start, env: {}, cwd: '/', spawnAs: null, instructions, user: who },
          limits,
          payload.scriptInterpreter,
          ctx,
        );
      }
      const [first = prlimit, ...rest] = command;
      return await supervise(
        { command: first, args: rest, env, cwd: workdir, spawnAs: owner, instructions: null, user: who },
        limits,
        payload.scriptInterpreter,
        ctx,
      );
    } finally {
      const dirs = root === undefined ? [workdir] : [workdir, root];
      for (const dir of dirs) {
        await removeWorkdir(dir).catch((err: unknown) =>
          ctx.log.warn('could not remove the script working directory', {
            workdir: dir,
            error: (err as Error).message,
          }),
        );
      }
    }
  }

  async function supervise(
    launch: Launch,
    limits: ResolvedScriptLimits,
    interpreter: ScriptInterpreter,
    ctx: ExecContext,
  ): Promise<ExecResult> {
    const started = performance.now();
    let child: ChildProcess & { stdout: Readable; stderr: Readable };
    try {
      child = spawn(launch.command, launch.args, {
        cwd: launch.cwd,
        env: launch.env,
        // setsid(): the child leads a new session and process group, killed as one.
        detached: true,
        // fd 3 of a sandbox: its instructions in, its report out; closed, it means the worker died.
        stdio: launch.instructions ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'],
        ...(launch.spawnAs ? { uid: launch.spawnAs.uid, gid: launch.spawnAs.gid } : {}),
      }) as ChildProcess & { stdout: Readable; stderr: Readable };
    } catch (err) {
      throw new PermanentJobError(`could not start the script: ${(err as Error).message}`, 'SPAWN_FAILED', {
        cause: err,
      });
    }
    let report = '';
    const control = launch.instructions ? (child.stdio[3] as Duplex | null) : null;
    if (control && launch.instructions) {
      control.on('data', (chunk: Buffer) => (report += chunk.toString('utf8')));
      // A sandbox that died early resets the socket: its exit status tells the rest.
      control.on('error', () => {});
      // Never end() it: end-of-file on fd 3 tells the sandbox that the worker is gone.
      control.write(launch.instructions);
    }
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const pgid = child.pid;

    let stoppedFor: 'abort' | 'output' | null = null;
    let graceTimer: NodeJS.Timeout | undefined;
    const stop = (why: 'abort' | 'output', signal: NodeJS.Signals) => {
      if (stoppedFor !== null || pgid === undefined) return;
      stoppedFor = why;
      signalGroup(pgid, signal);
      if (signal !== 'SIGKILL') graceTimer = setTimeout(() => signalGroup(pgid, 'SIGKILL'), killGraceMs);
    };
    const onAbort = () => stop('abort', 'SIGTERM');

    let logged = 0;
    let outputBytes = 0;
    const stdoutTail = new TailBuffer(tailBytes);
    const stderrTail = new TailBuffer(tailBytes);
    const logLine = (stream: 'stdout' | 'stderr') => (line: string, truncated: boolean) => {
      if (logged > maxLogLines) return;
      if (logged++ === maxLogLines) {
        ctx.log.warn(`script output past ${maxLogLines} lines is not logged (still counted)`);
        return;
      }
      const context = truncated ? { stream, truncated: true } : { stream };
      if (stream === 'stdout') ctx.log.info(line, context);
      else ctx.log.warn(line, context);
    };
    const splitters = {
      stdout: new LineSplitter(maxLineBytes, logLine('stdout')),
      stderr: new LineSplitter(maxLineBytes, logLine('stderr')),
    };
    const read = (stream: 'stdout' | 'stderr', tail: TailBuffer) => (chunk: Buffer) => {
      if (stoppedFor === 'output') return;
      const room = limits.maxOutputBytes - outputBytes;
      const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
      outputBytes += kept.length;
      tail.push(kept);
      // Past the log cap lines are no longer split: counting bytes is enough.
      if (logged <= maxLogLines) splitters[stream].push(kept);
      if (kept.length < chunk.length) {
        stop('output', 'SIGKILL');
        // Nothing more is read; writers get EPIPE until the kill lands.
        child.stdout.destroy();
        child.stderr.destroy();
      }
    };
    child.stdout.on('data', read('stdout', stdoutTail));
    child.stderr.on('data', read('stderr', stderrTail));

    let status: { code: number | null; signal: NodeJS.Signals | null };
    try {
      if (pgid !== undefined) {
        ctx.signal.addEventListener('abort', onAbort, { once: true });
        if (ctx.signal.aborted) onAbort();
        ctx.log.info('script started', {
          interpreter,
          pid: pgid,
          user: launch.user,
          isolation: launch.instructions ? 'namespaces' : 'none',
          limits,
        });
      }
      status = await exited;
    } catch (err) {
      throw new PermanentJobError(`could not start the script: ${(err as Error).message}`, 'SPAWN_FAILED', {
        cause: err,
      });
    } finally {
      clearTimeout(graceTimer);
      ctx.signal.removeEventListener('abort', onAbort);
      if (pgid !== undefined) {
        // Whatever the script left behind dies with it: background jobs, and escapees (setsid).
        const { killed, survivors } = await killRunProcesses(pgid, ctx.runId, 2000);
        if (killed > 0) ctx.log.debug('killed processes the script left running', { killed });
        if (survivors.length > 0) ctx.log.warn('some processes of the script did not die', { survivors });
      }
      // Output still in the pipes arrives before 'close'; a pipe held open by a process we could
      // not kill must not hold the run.
      let closeTimer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise((resolve) => (closeTimer = setTimeout(resolve, 1000)))]);
      clearTimeout(closeTimer);
      child.stdout.destroy();
      child.stderr.destroy();
      control?.destroy();
      splitters.stdout.end();
      splitters.stderr.end();
    }

    const durationMs = Math.round(performance.now() - started);
    const stderrText = stderrTail.text();
    if (launch.instructions)
      status = sandboxStatus(parseSandboxReport(report), status, stoppedFor, stderrText);
    ctx.log.info('script ended', {
      exitCode: status.code,
      signal: status.signal,
      durationMs,
      stdoutBytes: stdoutTail.total,
      stderrBytes: stderrTail.total,
    });
    if (stoppedFor === 'abort') throw ctx.signal.reason;
    if (stoppedFor === 'output') {
      throw new ScriptLimitError(
        `script output passed maxOutputBytes (${limits.maxOutputBytes} bytes of stdout + stderr); its processes were killed`,
        'OUTPUT_LIMIT',
        null,
        stderrText,
      );
    }
    if (status.signal !== null) {
      const { signal } = status;
      if (signal === 'SIGXCPU')
        throw new ScriptLimitError(
          `script killed by SIGXCPU: it used its ${limits.cpuSeconds} CPU seconds`,
          'CPU_LIMIT',
          signal,
          stderrText,
        );
      if (signal === 'SIGXFSZ')
        throw new ScriptLimitError(
          `script killed by SIGXFSZ: it wrote a file larger than ${limits.maxFileSizeMb} MB`,
          'FILE_SIZE_LIMIT',
          signal,
          stderrText,
        );
      const hint = signal === 'SIGKILL' ? ' (the CPU limit, the OOM killer or an operator)' : '';
      throw new ScriptKilledError(`script killed by ${signal}${hint}`, signal, stderrText);
    }
    const code = status.code ?? -1;
    if (code !== 0) {
      // Shells report a child killed by signal n as 128 + n.
      const bySignal = code > 128 ? signalName(code - 128) : undefined;
      const hint = bySignal ? ` (128 + ${code - 128}: a process got ${bySignal})` : '';
      const last = lastLine(stderrText);
      throw new ScriptExitError(
        `script exited with code ${code}${hint}${last ? `: ${last}` : ''}`,
        code,
        stderrText,
      );
    }
    const output: ScriptOutput = {
      exitCode: 0,
      stdoutTail: stdoutTail.text(),
      stdoutBytes: stdoutTail.total,
      stderrBytes: stderrTail.total,
      durationMs,
    };
    return { exitCode: 0, output };
  }
}

/** How a script is started: directly (isolation `none`) or through the sandbox's init. */
interface Launch {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** Spawned as this user (isolation `none` on a root worker). */
  spawnAs: UnixUser | null;
  /** What the sandbox's init reads on fd 3; null without a sandbox. */
  instructions: Buffer | null;
  /** Who the script runs as, for the log. */
  user: string;
}

type ExitStatus = { code: number | null; signal: NodeJS.Signals | null };

/**
 * The script's own exit status, from the sandbox's report (the status of the process the worker
 * started is unshare's). No report and no stop of ours: the sandbox failed before the script ran —
 * unless the sandbox was killed from outside (the OOM killer, an operator), which counts as the
 * script being killed.
 */
function sandboxStatus(
  report: SandboxReport | null,
  outer: ExitStatus,
  stoppedFor: 'abort' | 'output' | null,
  stderrText: string,
): ExitStatus {
  if (report?.kind === 'error') {
    throw new PermanentJobError(
      `the script sandbox could not start the script: ${report.message}`,
      'ISOLATION_UNAVAILABLE',
    );
  }
  if (report?.kind === 'exit') return { code: report.code, signal: null };
  if (report?.kind === 'signal') {
    return { code: null, signal: (signalName(report.signal) ?? 'SIGKILL') as NodeJS.Signals };
  }
  if (stoppedFor !== null || outer.signal !== null) return outer;
  const last = lastLine(stderrText);
  throw new PermanentJobError(
    `the script sandbox failed before the script ran (exit code ${outer.code})${last ? `: ${last}` : ''}; SCRIPT_ISOLATION=none runs scripts without it`,
    'ISOLATION_UNAVAILABLE',
  );
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null)) as Partial<T>;
}

/** The SCRIPT executor of a deployment with default options: enabled, sandboxed, as `chronos-script`. */
export const runScript: Executor<ScriptPayloadInput> = createScriptExecutor({ enabled: true });
