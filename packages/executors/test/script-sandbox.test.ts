import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_SCRIPT_USER,
  SANDBOX_SYSTEM_PATHS,
  createScriptExecutor,
  type ScriptOutput,
} from '../src/script.ts';
import { lookupUser } from '../src/script/process.ts';
import { coverablePaths, parseSandboxReport, parseVisiblePath } from '../src/script/sandbox.ts';
import { rejection } from './helpers.ts';
import { processes, scriptCtx, stdoutLines, waitFor } from './script-helpers.ts';

const here = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(here, '..', '..', '..');
const RUNNER = join(here, 'fixtures', 'script-runner.ts');
// By path: the runner may start in a folder from which the package `tsx` cannot be resolved.
const TSX = pathToFileURL(join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

// Workers of this kind run as root; these tests need it, and fail (rather than skip) without it.
const SECRETS = {
  JWT_SECRET: 'jwt-secret-of-the-worker-0123456789abcdef',
  ENCRYPTION_KEY: 'encryption-key-of-the-worker-0123456789',
  DATABASE_URL: 'postgres://chronos:db-password-of-the-worker@db/chronos',
};

let tmp: string;
/** An empty folder every user can reach, where runners started as another user see the checkout. */
let reachable: string;
let reachableRoot: string;
let checkoutEntries: string[] = [];
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'chronos-sandbox-test-'));
  reachable = await mkdtemp(join(tmpdir(), 'chronos-sandbox-reachable-'));
  await chmod(reachable, 0o755);
  reachableRoot = join(reachable, 'checkout');
  await mkdir(reachableRoot, { mode: 0o755 });
  // Each entry of the checkout gets a mount point (the checkout's own folder may be 0700 itself).
  checkoutEntries = readdirSync(REPO_ROOT, { withFileTypes: true })
    .filter((e) => e.isDirectory() || e.isFile())
    .map((e) => e.name);
  for (const name of checkoutEntries) {
    if (statSync(join(REPO_ROOT, name)).isDirectory()) await mkdir(join(reachableRoot, name));
    else await writeFile(join(reachableRoot, name), '');
  }
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  await rm(reachable, { recursive: true, force: true });
});

interface RunnerLine {
  event: 'log' | 'result' | 'error' | 'preflight';
  msg?: string;
  problem?: string | null;
  context?: Record<string, unknown>;
  code?: string;
  message?: string;
  result?: { output: ScriptOutput };
}

interface Runner {
  child: ChildProcess;
  lines: RunnerLine[];
  stderr: () => string;
  done: Promise<void>;
}

/** The executor in a process of its own (a worker in miniature), with exactly `env`. */
function startRunner(
  options: Record<string, unknown>,
  payload: Record<string, unknown>,
  runId: string,
  spawnOptions: { env?: Record<string, string>; cwd?: string; asUser?: { uid: number; gid: number } } = {},
): Runner {
  const rest = [JSON.stringify(options), JSON.stringify(payload), runId];
  const args = ['--import', TSX, RUNNER, ...rest];
  // Another user may not reach the checkout (a clone inside a 0700 folder, as `mktemp -d` makes):
  // in a mount namespace of its own the runner sees the checkout bind-mounted at a reachable path.
  const asUser = spawnOptions.asUser;
  const seen = (path: string) => join(reachableRoot, path.slice(REPO_ROOT.length));
  const [command, argv] = asUser
    ? [
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          '--',
          'sh',
          '-c',
          'src=$1 dst=$2 n=$3; shift 3; while [ "$n" -gt 0 ]; do mount --bind "$src/$1" "$dst/$1" || exit 1; shift; n=$((n - 1)); done; exec "$@"',
          'sh',
          REPO_ROOT,
          reachableRoot,
          String(checkoutEntries.length),
          ...checkoutEntries,
          'setpriv',
          '--reuid',
          String(asUser.uid),
          '--regid',
          String(asUser.gid),
          '--clear-groups',
          '--',
          process.execPath,
          '--import',
          pathToFileURL(seen(fileURLToPath(TSX))).href,
          seen(RUNNER),
          ...rest,
        ],
      ]
    : [process.execPath, args];
  const child = spawn(command, argv, {
    cwd: spawnOptions.cwd ?? (asUser ? reachable : REPO_ROOT),
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...spawnOptions.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: RunnerLine[] = [];
  let partial = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    for (const part of parts) if (part.startsWith('{')) lines.push(JSON.parse(part) as RunnerLine);
  });
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const done = new Promise<void>((resolveDone) => child.once('close', () => resolveDone()));
  return { child, lines, stderr: () => stderr, done };
}

function outcome(runner: Runner): RunnerLine {
  const end = runner.lines.find((l) => l.event === 'result' || l.event === 'error');
  if (!end) throw new Error(`the runner ended without an outcome:\n${runner.stderr()}`);
  return end;
}

const scriptOutput = (lines: RunnerLine[]) =>
  lines.filter((l) => l.event === 'log' && l.context?.['stream'] !== undefined).map((l) => l.msg ?? '');

const runIdOf = () => scriptCtx().runId;

/** Live processes whose environment carries CHRONOS_RUN_ID=<runId> (root reads every environ). */
async function processesOfRun(runId: string): Promise<number[]> {
  const marker = `CHRONOS_RUN_ID=${runId}\0`;
  const found: number[] = [];
  for (const p of await processes()) {
    if (p.state === 'Z') continue;
    try {
      if ((await readFile(`/proc/${p.pid}/environ`, 'latin1')).includes(marker)) found.push(p.pid);
    } catch {
      // gone
    }
  }
  return found;
}

describe('SCRIPT sandbox: what a script can see', { timeout: 60_000 }, () => {
  it('runs as root, as workers of this kind do; a root worker with the tools finds nothing to refuse at start', async () => {
    expect(await createScriptExecutor({ enabled: true }).preflight()).toBeNull();
    expect(process.getuid?.()).toBe(0);
  });

  it("shows a script none of the worker's secrets: /proc/$PPID/environ, /proc/1/environ, ps, the data folder, the worker's config and code", async () => {
    // The worker's folder holds its configuration; its data folder holds state worth stealing.
    const app = join(tmp, 'worker-app');
    const data = join(app, '.data');
    await mkdir(join(data, 's3', 'bucket'), { recursive: true });
    await writeFile(join(data, 's3', 'bucket', 'secret.txt'), `${SECRETS.ENCRYPTION_KEY}\n`);
    await writeFile(join(app, '.env'), `JWT_SECRET=${SECRETS.JWT_SECRET}\n`);
    const runId = runIdOf();
    const script = [
      'echo "ppid=$PPID"',
      'echo "--- every environ in view"',
      'for f in /proc/$PPID/environ /proc/1/environ /proc/[0-9]*/environ; do echo "$f"; tr "\\0" "\\n" < "$f"; done',
      'echo "--- ps"',
      'ps -eo pid=,uid=,args=',
      'echo "--- data"',
      'ls -la "$DATA_DIR"; cat "$DATA_DIR/s3/bucket/secret.txt"',
      'echo "--- config"',
      'cat "$APP_DIR/.env"; ls -la "$APP_DIR"',
      'echo "--- code"',
      'ls "$REPO_DIR"; cat "$REPO_DIR/package.json"',
      'echo "--- root"',
      'ls /',
      'exit 0',
    ].join('\n');
    const runner = startRunner(
      // As apps/worker wires it: the data folder and the worker's own folder are hidden too.
      { hiddenPaths: [data, app, REPO_ROOT] },
      { scriptContent: script, scriptEnv: { DATA_DIR: data, APP_DIR: app, REPO_DIR: REPO_ROOT } },
      runId,
      { env: { ...SECRETS, CHRONOS_DATA_DIR: data }, cwd: app },
    );
    await runner.done;
    expect(outcome(runner)).toMatchObject({ event: 'result' });
    const out = scriptOutput(runner.lines);
    const text = out.join('\n');
    // The runner (the worker) started with the secrets in its environment, readable in its
    // /proc/<pid>/environ for its whole life: none of them may reach the script's output.
    for (const value of Object.values(SECRETS)) expect(text).not.toContain(value);
    // Its parent is the sandbox's init (PID 1 of its own PID namespace), which it may not read.
    expect(out[0]).toBe('ppid=1');
    expect(text).toMatch(/\/proc\/1\/environ: Permission denied/);
    // stdout alone: stderr lines (the loop's "Permission denied") may arrive in between.
    const stdout = runner.lines
      .filter((l) => l.event === 'log' && l.context?.['stream'] === 'stdout')
      .map((l) => l.msg ?? '');
    const ps = stdout.slice(stdout.indexOf('--- ps') + 1, stdout.indexOf('--- data'));
    expect(ps.length).toBeGreaterThanOrEqual(3);
    const scriptUid = (await lookupUser(DEFAULT_SCRIPT_USER, '/usr/sbin:/usr/bin:/sbin:/bin')).uid;
    for (const line of ps) {
      const [pid, uid, ...args] = line.trim().split(/\s+/);
      expect(Number(pid)).toBeLessThan(1000);
      expect([String(scriptUid), '0']).toContain(uid);
      expect(args.join(' ')).not.toMatch(/node|vitest|script-runner|tsx/);
      // The only root process is the sandbox's init, PID 1.
      if (uid === '0') expect([pid, args.join(' ')]).toEqual(['1', 'chronos-sandbox-init']);
    }
    expect(text).toContain(`ls: cannot access '${data}': No such file or directory`);
    expect(text).toContain(`cat: ${app}/.env: No such file or directory`);
    expect(text).toContain(`cat: ${REPO_ROOT}/package.json: No such file or directory`);
    const root = out.slice(out.indexOf('--- root') + 1);
    const system = SANDBOX_SYSTEM_PATHS.filter((p) => existsSync(p)).map((p) => p.slice(1));
    expect(root.sort()).toEqual([...system, 'dev', 'proc', 'sys', 'tmp'].sort());
  });

  it('runs it as the script user: its uid and group only, no capabilities, no_new_privs', async () => {
    const user = await lookupUser(DEFAULT_SCRIPT_USER, '/usr/sbin:/usr/bin:/sbin:/bin').catch(() => null);
    const ctx = scriptCtx();
    await createScriptExecutor({ enabled: true })(
      { scriptContent: 'id -un; grep -E "^(Uid|Gid|Groups|CapEff|CapPrm|NoNewPrivs):" /proc/self/status' },
      ctx,
    );
    // The account exists now, created on first use if it was missing.
    const created = user ?? (await lookupUser(DEFAULT_SCRIPT_USER, '/usr/sbin:/usr/bin:/sbin:/bin'));
    const [name, ...status] = stdoutLines(ctx);
    expect(name).toBe(DEFAULT_SCRIPT_USER);
    const field = (key: string) =>
      status
        .find((l) => l.startsWith(`${key}:`))
        ?.split(/\s+/)
        .slice(1)
        .filter((v) => v !== '');
    expect(field('Uid')).toEqual(Array(4).fill(String(created.uid)));
    expect(field('Gid')).toEqual(Array(4).fill(String(created.gid)));
    expect(field('Groups')).toEqual([String(created.gid)]);
    expect(field('CapEff')).toEqual(['0000000000000000']);
    expect(field('CapPrm')).toEqual(['0000000000000000']);
    expect(field('NoNewPrivs')).toEqual(['1']);
  });

  it('shows visible paths (read-only unless :rw), covers hidden paths inside them, and a /tmp of its own; leaves no folder behind', async () => {
    const shared = join(tmp, 'shared');
    const out = join(tmp, 'out');
    const runs = join(tmp, 'runs');
    await mkdir(runs);
    await mkdir(join(shared, 'private'), { recursive: true });
    await mkdir(join(shared, 'public'), { recursive: true });
    await mkdir(out, { recursive: true });
    await chmod(out, 0o777);
    await writeFile(join(shared, 'private', 'key'), 'private key material');
    await writeFile(join(shared, 'public', 'file'), 'public data');
    await writeFile(join(tmp, 'host-tmp-file'), 'on the host');
    const ctx = scriptCtx();
    const run = createScriptExecutor({
      enabled: true,
      visiblePaths: [parseVisiblePath(shared), parseVisiblePath(`${out}:rw`)],
      hiddenPaths: [join(shared, 'private')],
      tmpRoot: runs,
    });
    await run(
      {
        scriptContent: [
          `cat ${shared}/public/file; echo`,
          `ls -A ${shared}/private | wc -l`,
          `touch ${shared}/public/new 2>&1 | sed 's/.*: //'`,
          `echo written > ${out}/result && echo wrote`,
          'ls -A /tmp',
          `test -e ${tmp}/host-tmp-file && echo host-tmp-visible || echo host-tmp-hidden`,
        ].join('\n'),
      },
      ctx,
    );
    // /tmp holds only the way to the paths it was given (its working directory among them).
    expect(stdoutLines(ctx)).toEqual([
      'public data',
      '0',
      'Read-only file system',
      'wrote',
      basename(tmp),
      'host-tmp-hidden',
    ]);
    // Its working directory and the sandbox's mount point are gone.
    expect(readdirSync(runs)).toEqual([]);
    expect(await readFile(join(out, 'result'), 'utf8')).toBe('written\n');
    const owner = await lookupUser(DEFAULT_SCRIPT_USER, '/usr/sbin:/usr/bin:/sbin:/bin');
    expect((await stat(join(out, 'result'))).uid).toBe(owner.uid);
  });

  it("gives nothing of the job's environment to the sandbox's root programs (PERL5OPT would load a module into the init)", async () => {
    const ctx = scriptCtx();
    await createScriptExecutor({ enabled: true })(
      { scriptContent: 'echo "$PERL5OPT"', scriptEnv: { PERL5OPT: '-MNo::Such::Module::Chronos' } },
      ctx,
    );
    // The script has it; the init (perl, as root) never saw it, or it would not have started.
    expect(stdoutLines(ctx)).toEqual(['-MNo::Such::Module::Chronos']);
  });

  it('refuses a NUL byte in the environment (which no sandbox instruction may hold) as INVALID_PAYLOAD, starting nothing', async () => {
    const ctx = scriptCtx();
    const err = await rejection(() =>
      createScriptExecutor({ enabled: true })(
        { scriptContent: 'echo no', scriptEnv: { A: 'x\u0000y' } },
        ctx,
      ),
    );
    expect(err).toMatchObject({ code: 'INVALID_PAYLOAD' });
    expect(err.message).toContain('scriptEnv.A');
    expect(ctx.log.lines).toEqual([]);
  });

  it('never covers / or a path holding something the script must see', () => {
    expect(
      coverablePaths(
        ['/', '/usr', '/srv/app', '/data', '/data/', '/etc/chronos'],
        ['/usr', '/etc', '/data/files'],
      ),
    ).toEqual({ covered: ['/srv/app', '/etc/chronos'], skipped: ['/', '/usr', '/data'] });
  });

  it('reads visible paths and the sandbox report as written', () => {
    expect(parseVisiblePath('/data/in')).toEqual({ path: '/data/in', writable: false });
    expect(parseVisiblePath(' /data/out/:rw ')).toEqual({ path: '/data/out/', writable: true });
    expect(parseVisiblePath('/a:b:ro')).toEqual({ path: '/a:b', writable: false });
    expect(() => parseVisiblePath('data')).toThrow(/not an absolute path/);
    expect(parseSandboxReport('exit 3\n')).toEqual({ kind: 'exit', code: 3 });
    expect(parseSandboxReport('signal 24\n')).toEqual({ kind: 'signal', signal: 24 });
    expect(parseSandboxReport('error cannot run x\nexit 127\n')).toEqual({
      kind: 'error',
      message: 'cannot run x',
    });
    expect(parseSandboxReport('')).toBeNull();
  });
});

describe('SCRIPT sandbox: dying with the worker', { timeout: 60_000 }, () => {
  it('kills every process of a script when its worker is killed with SIGKILL, before the script could finish', async () => {
    const out = join(tmp, 'dies-with-worker');
    await mkdir(out, { recursive: true });
    await chmod(out, 0o777);
    const marker = join(out, 'finished');
    const runId = runIdOf();
    const sleepSeconds = 4;
    // A killed worker cleans nothing up: its run's folders go with this test's.
    const runs = join(tmp, 'dies-with-worker-runs');
    await mkdir(runs);
    const runner = startRunner(
      { visiblePaths: [{ path: out, writable: true }], tmpRoot: runs },
      {
        scriptContent: `sleep 1000.25 & setsid sleep 1000.5 & echo started; sleep ${sleepSeconds}; touch ${marker}; echo finished`,
      },
      runId,
      { env: SECRETS },
    );
    try {
      await waitFor(() => scriptOutput(runner.lines).includes('started'), 30_000);
      const before = await processesOfRun(runId);
      // The script's shell, its two sleeps and the foreground sleep, and the sandbox init.
      expect(before.length).toBeGreaterThanOrEqual(4);
      const scriptWouldEnd = Date.now() + sleepSeconds * 1000;
      runner.child.kill('SIGKILL');
      await runner.done;
      // Every process of the run is gone, with nobody left to clean up after the worker.
      const deadline = Date.now() + 10_000;
      let left = before;
      while (left.length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        left = await processesOfRun(runId);
      }
      expect(left).toEqual([]);
      // And the script never reaches its end: watched until well past when it would have.
      while (Date.now() < scriptWouldEnd + 2000) {
        expect(existsSync(marker)).toBe(false);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(existsSync(marker)).toBe(false);
      expect(scriptOutput(runner.lines)).not.toContain('finished');
    } finally {
      runner.child.kill('SIGKILL');
    }
  });
});

describe('SCRIPT sandbox: refusals and the opt-out', { timeout: 60_000 }, () => {
  const nobody = { uid: 65534, gid: 65534 };

  it('a non-root worker refuses SCRIPT runs with ISOLATION_UNAVAILABLE and says what to do', async () => {
    const runner = startRunner({}, { scriptContent: 'echo should not run' }, runIdOf(), {
      asUser: nobody,
      env: { HOME: '/nonexistent' },
    });
    await runner.done;
    const end = outcome(runner);
    expect(end).toMatchObject({ event: 'error', code: 'ISOLATION_UNAVAILABLE' });
    expect(end.message).toContain('need a root worker');
    expect(end.message).toContain('SCRIPT_ISOLATION=none');
    expect(scriptOutput(runner.lines)).toEqual([]);
    // The worker says so once at start, too.
    expect(runner.lines.find((l) => l.event === 'preflight')?.problem).toContain('need a root worker');
  });

  it('with SCRIPT_ISOLATION=none a non-root worker runs scripts as its own user (the documented opt-in)', async () => {
    const runner = startRunner({ isolation: 'none' }, { scriptContent: 'id -u' }, runIdOf(), {
      asUser: nobody,
      env: { HOME: '/nonexistent' },
    });
    await runner.done;
    expect(outcome(runner)).toMatchObject({ event: 'result' });
    expect(scriptOutput(runner.lines)).toEqual(['65534']);
  });

  it("with SCRIPT_ISOLATION=none a root worker still runs scripts as the script user, who cannot read the worker's environment", async () => {
    const ctx = scriptCtx();
    await createScriptExecutor({ enabled: true, isolation: 'none' })(
      {
        scriptContent:
          'id -un; cat /proc/$PPID/environ >/dev/null 2>&1 && echo worker-env-readable || echo worker-env-denied',
      },
      ctx,
    );
    expect(stdoutLines(ctx)).toEqual([DEFAULT_SCRIPT_USER, 'worker-env-denied']);
  });

  it.each(['root', '0', '0:0', '65534:0'])(
    'refuses SCRIPT_RUN_AS=%s: scripts never run as root',
    async (runAs) => {
      const err = await rejection(() =>
        createScriptExecutor({ enabled: true, runAs })({ scriptContent: 'id' }, scriptCtx()),
      );
      expect(err).toMatchObject({ code: 'RUN_AS_FAILED' });
      expect(err.message).toContain('scripts never run as root');
    },
  );

  it('fails with ISOLATION_UNAVAILABLE naming a visible path that does not exist', async () => {
    const ctx = scriptCtx();
    const missing = join(tmp, 'no-such-folder');
    const err = await rejection(() =>
      createScriptExecutor({ enabled: true, visiblePaths: [{ path: missing }] })(
        { scriptContent: 'echo should not run' },
        ctx,
      ),
    );
    expect(err).toMatchObject({ code: 'ISOLATION_UNAVAILABLE' });
    expect(err.message).toContain(`${missing} does not exist`);
    expect(stdoutLines(ctx)).toEqual([]);
  });

  it('fails with ISOLATION_UNAVAILABLE when the interpreter lies outside what scripts see', async () => {
    const dir = join(tmp, 'interpreters');
    await mkdir(dir, { recursive: true });
    await copyFile('/bin/sh', join(dir, 'sh'));
    await chmod(join(dir, 'sh'), 0o755);
    const err = await rejection(() =>
      createScriptExecutor({ enabled: true, interpreters: { sh: join(dir, 'sh') } })(
        { scriptContent: 'echo hi', scriptInterpreter: 'sh' },
        scriptCtx(),
      ),
    );
    expect(err).toMatchObject({ code: 'ISOLATION_UNAVAILABLE' });
    expect(err.message).toContain('SCRIPT_VISIBLE_PATHS');
  });
});
