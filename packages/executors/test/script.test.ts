import { PermanentJobError, RetryableJobError } from '@chronos/core';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SCRIPT_SAFE_PATH,
  createScriptExecutor,
  runScript,
  type ScriptExecutorOptions,
  type ScriptOutput,
} from '../src/script.ts';
import { findExecutable } from '../src/script/process.ts';
import { rejection } from './helpers.ts';
import { liveMembers, processes, scriptCtx, startedPid, stdoutLines, waitFor } from './script-helpers.ts';

const installed = {
  bash: await findExecutable('bash', SCRIPT_SAFE_PATH),
  sh: await findExecutable('sh', SCRIPT_SAFE_PATH),
  node: await findExecutable('node', SCRIPT_SAFE_PATH),
  python3: await findExecutable('python3', SCRIPT_SAFE_PATH),
};

const executor = (options: Partial<ScriptExecutorOptions> = {}) =>
  createScriptExecutor({ enabled: true, ...options });

describe('SCRIPT executor: running a script', () => {
  it.each([
    ['bash', 'echo "hello from $BASH_VERSION" | cut -c1-16'],
    ['sh', 'echo hello from sh'],
    ['node', 'console.log("hello from node")'],
    ['python3', 'print("hello from python3")'],
  ] as const)('runs hello world in %s', async (interpreter, scriptContent) => {
    if (!installed[interpreter]) return; // not installed here: INTERPRETER_MISSING is tested below
    const ctx = scriptCtx();
    const result = await runScript({ scriptContent, scriptInterpreter: interpreter }, ctx);
    const output = result.output as ScriptOutput;
    expect(result.exitCode).toBe(0);
    expect(output).toMatchObject({ exitCode: 0, stdoutTail: expect.stringMatching(/^hello from /) });
    expect(output.stdoutBytes).toBe(Buffer.byteLength(output.stdoutTail));
    expect(stdoutLines(ctx)).toEqual([output.stdoutTail.trimEnd()]);
  });

  it('fails with EXIT_CODE and exitCode 3 (what retry_on EXIT_CODE:3 matches) on exit 3', async () => {
    const err = await rejection(() =>
      runScript({ scriptContent: 'echo working; echo "disk full" >&2; exit 3' }, scriptCtx()),
    );
    expect(err).toBeInstanceOf(RetryableJobError);
    expect(err).toMatchObject({ code: 'EXIT_CODE', exitCode: 3, stderrTail: 'disk full\n' });
    expect(err.message).toBe('script exited with code 3: disk full');
  });

  it('names the signal when a shell reports 128 + n', async () => {
    const err = await rejection(() => runScript({ scriptContent: 'sh -c "kill -TERM \\$\\$"' }, scriptCtx()));
    expect(err).toMatchObject({ code: 'EXIT_CODE', exitCode: 143 });
    expect(err.message).toContain('128 + 15: a process got SIGTERM');
  });

  it('streams stdout (info) and stderr (warn) line by line, each in order', async () => {
    const ctx = scriptCtx();
    await runScript(
      {
        scriptContent: [
          'for i in $(seq 1 300); do echo "out $i"; done',
          'for i in $(seq 1 50); do echo "err $i" >&2; done',
          'sleep 0.1; echo "after a pause"',
          "printf 'windows line\\r\\n'",
          "printf 'no newline at the end'",
        ].join('\n'),
      },
      ctx,
    );
    const out = stdoutLines(ctx);
    const err = ctx.log.lines.filter((l) => l.context?.['stream'] === 'stderr');
    expect(out).toEqual([
      ...Array.from({ length: 300 }, (_, i) => `out ${i + 1}`),
      'after a pause',
      'windows line',
      'no newline at the end',
    ]);
    expect(err.map((l) => l.msg)).toEqual(Array.from({ length: 50 }, (_, i) => `err ${i + 1}`));
    expect(new Set(err.map((l) => l.level))).toEqual(new Set(['warn']));
    // Both streams were read as the script wrote them: every stderr line precedes the pause.
    const at = (msg: string) => ctx.log.lines.findIndex((l) => l.msg === msg);
    expect(at('err 50')).toBeLessThan(at('after a pause'));
  });

  it('cuts a line longer than maxLineBytes and stops logging after maxLogLines', async () => {
    const ctx = scriptCtx();
    await executor({ maxLineBytes: 100, maxLogLines: 20 })(
      { scriptContent: 'head -c 100000 /dev/zero | tr "\\0" x; echo; seq 1 1000' },
      ctx,
    );
    const out = ctx.log.lines.filter((l) => l.context?.['stream'] === 'stdout');
    expect(out[0]).toEqual({
      level: 'info',
      msg: 'x'.repeat(100),
      context: { stream: 'stdout', truncated: true },
    });
    expect(out).toHaveLength(20);
    expect(ctx.log.lines.some((l) => l.msg.includes('past 20 lines is not logged'))).toBe(true);
  });
});

describe('SCRIPT executor: environment and working directory', () => {
  const secrets = {
    DATABASE_URL: 'postgres://chronos:hunter2@db/chronos',
    JWT_SECRET: 'jwt-secret-value',
    ENCRYPTION_KEY: 'encryption-key-value',
  };
  beforeAll(() => Object.assign(process.env, secrets));
  afterAll(() => {
    for (const name of Object.keys(secrets)) delete process.env[name];
  });

  it("gives the script exactly PATH, HOME, TMPDIR, LANG, CHRONOS_* and the job's scriptEnv", async () => {
    const ctx = scriptCtx({ attempt: 2 });
    const result = await runScript(
      {
        scriptInterpreter: 'python3',
        scriptContent: 'import json, os\nprint(json.dumps(dict(os.environ)))',
        scriptEnv: { GREETING: 'hello world', EMPTY: '' },
      },
      ctx,
    );
    const env = JSON.parse((result.output as ScriptOutput).stdoutTail) as Record<string, string>;
    expect(env).toEqual({
      PATH: SCRIPT_SAFE_PATH,
      HOME: expect.stringContaining('chronos-script-'),
      TMPDIR: env['HOME'],
      LANG: 'C.UTF-8',
      CHRONOS_RUN_ID: ctx.runId,
      CHRONOS_JOB_ID: ctx.jobId,
      CHRONOS_ATTEMPT: '2',
      CHRONOS_IDEMPOTENCY_KEY: ctx.idempotencyKey,
      GREETING: 'hello world',
      EMPTY: '',
    });
  });

  it("shows none of the worker's variables to a shell's `env`", async () => {
    expect(process.env['DATABASE_URL']).toBe(secrets.DATABASE_URL);
    const ctx = scriptCtx();
    await runScript({ scriptContent: 'env' }, ctx);
    const names = stdoutLines(ctx).map((l) => l.split('=')[0]);
    // bash itself adds PWD, SHLVL and _.
    expect(names.sort()).toEqual(
      [
        'CHRONOS_ATTEMPT',
        'CHRONOS_IDEMPOTENCY_KEY',
        'CHRONOS_JOB_ID',
        'CHRONOS_RUN_ID',
        'HOME',
        'LANG',
        'PATH',
        'PWD',
        'SHLVL',
        'TMPDIR',
        '_',
      ].sort(),
    );
    const all = ctx.log.lines.map((l) => `${l.msg} ${JSON.stringify(l.context)}`).join('\n');
    for (const value of Object.values(secrets)) expect(all).not.toContain(value);
  });

  it('refuses loader and interpreter-injection variables with the field path', async () => {
    const err = await rejection(() =>
      runScript({ scriptContent: 'true', scriptEnv: { LD_PRELOAD: '/tmp/evil.so' } }, scriptCtx()),
    );
    expect(err).toMatchObject({ code: 'INVALID_PAYLOAD' });
    expect(err.message).toContain('scriptEnv.LD_PRELOAD: is refused');
  });

  it('runs each script in a fresh private directory, removed afterwards', async () => {
    const script = 'pwd; stat -c %a .; ls -A; mkdir -p sub && touch sub/leftover && chmod 500 sub';
    const first = scriptCtx();
    const second = scriptCtx();
    await runScript({ scriptContent: script }, first);
    await runScript({ scriptContent: script }, second);
    const [dir1, mode, listing] = stdoutLines(first);
    const [dir2] = stdoutLines(second);
    expect(dir1).toMatch(/chronos-script-/);
    expect(dir2).toMatch(/chronos-script-/);
    expect(dir1).not.toBe(dir2);
    expect(mode).toBe('700');
    expect(listing).toBe('script.sh');
    expect(existsSync(dir1 ?? '/nonexistent')).toBe(false);
    expect(existsSync(dir2 ?? '/nonexistent')).toBe(false);
  });
});

describe('SCRIPT executor: stopping and limits', () => {
  it('on abort kills the whole process group, background children included, and rejects with the reason', async () => {
    const controller = new AbortController();
    const ctx = scriptCtx({ signal: controller.signal });
    const reason = new Error('run timed out after 1 s');
    const running = rejection(() =>
      runScript({ scriptContent: 'sleep 1000 & sleep 1000 & echo started; wait' }, ctx),
    );
    await waitFor(() => stdoutLines(ctx).includes('started'));
    const pgid = startedPid(ctx);
    expect((await liveMembers(pgid)).length).toBeGreaterThanOrEqual(3);
    const aborted = Date.now();
    controller.abort(reason);
    expect(await running).toBe(reason);
    expect(Date.now() - aborted).toBeLessThan(1500);
    expect(await liveMembers(pgid)).toEqual([]);
  });

  it('SIGKILLs a group that ignores SIGTERM after killGraceMs', async () => {
    const controller = new AbortController();
    const ctx = scriptCtx({ signal: controller.signal });
    const running = rejection(() =>
      executor({ killGraceMs: 300 })(
        { scriptContent: "trap '' TERM; sleep 1000 & echo started; while :; do wait; done" },
        ctx,
      ),
    );
    await waitFor(() => stdoutLines(ctx).includes('started'));
    const pgid = startedPid(ctx);
    const aborted = Date.now();
    controller.abort(new Error('cancelled'));
    expect((await running).message).toBe('cancelled');
    expect(Date.now() - aborted).toBeGreaterThanOrEqual(280);
    expect(await liveMembers(pgid)).toEqual([]);
  });

  it('kills what a successful script left running, even a process that left the group with setsid', async () => {
    const ctx = scriptCtx();
    await runScript({ scriptContent: 'sleep 1001.25 & setsid sleep 1002.25 & sleep 0.2; echo done' }, ctx);
    expect(stdoutLines(ctx)).toEqual(['done']);
    const left = (await processes()).filter((p) => p.state !== 'Z' && /sleep 100[12]\.25/.test(p.cmdline));
    expect(left).toEqual([]);
  });

  it('rejects at once with the reason when the signal is already aborted', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled before start');
    controller.abort(reason);
    const ctx = scriptCtx({ signal: controller.signal });
    expect(await rejection(() => runScript({ scriptContent: 'echo never' }, ctx))).toBe(reason);
    expect(ctx.log.lines).toEqual([]);
  });

  it('contains an infinite loop with cpuSeconds: CPU_LIMIT (SIGXCPU) after about a second', async () => {
    const started = Date.now();
    const err = await rejection(() =>
      runScript(
        { scriptContent: 'while :; do :; done', metadata: { limits: { cpuSeconds: 1 } } },
        scriptCtx(),
      ),
    );
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err).toMatchObject({ code: 'CPU_LIMIT', signal: 'SIGXCPU' });
    expect(err.message).toContain('SIGXCPU');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it.each([
    ['python3', 'x = bytearray(4 * 1024**3)', /MemoryError/],
    ['node', 'const b = Buffer.alloc(4 * 1024 ** 3, 1); console.log(b.length)', /./],
  ] as const)('fails a 4 GB allocation in %s under memoryMb', async (interpreter, scriptContent, stderr) => {
    if (!installed[interpreter]) return;
    const rssBefore = process.memoryUsage().rss;
    const err = await rejection(() =>
      runScript(
        { scriptContent, scriptInterpreter: interpreter, metadata: { limits: { memoryMb: 256 } } },
        scriptCtx(),
      ),
    );
    expect(err).toMatchObject({ code: expect.stringMatching(/^(EXIT_CODE|KILLED)$/) });
    expect(String(err['stderrTail'])).toMatch(stderr);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(100 * 1024 * 1024);
  });

  it('fails a file larger than maxFileSizeMb with FILE_SIZE_LIMIT (SIGXFSZ)', async () => {
    const err = await rejection(() =>
      runScript(
        {
          scriptContent: 'exec head -c 3000000 /dev/zero > big',
          metadata: { limits: { maxFileSizeMb: 1 } },
        },
        scriptCtx(),
      ),
    );
    expect(err).toMatchObject({ code: 'FILE_SIZE_LIMIT', signal: 'SIGXFSZ' });
  });

  it('stops 100 MB of output at maxOutputBytes without holding it in memory', async () => {
    const ctx = scriptCtx();
    const rssBefore = process.memoryUsage().rss;
    const started = Date.now();
    const err = await rejection(() =>
      runScript({ scriptContent: 'yes | head -c 100000000; echo finished' }, ctx),
    );
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err).toMatchObject({ code: 'OUTPUT_LIMIT' });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(stdoutLines(ctx)).not.toContain('finished');
    expect(ctx.log.lines.length).toBeLessThanOrEqual(10_005);
    const ended = ctx.log.lines.find((l) => l.msg === 'script ended');
    expect(ended?.context?.['stdoutBytes']).toBe(10 * 1024 * 1024);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(150 * 1024 * 1024);
  });
});

describe('SCRIPT executor: refusals', () => {
  it('refuses every run with SCRIPT_DISABLED when disabled, starting nothing', async () => {
    const ctx = scriptCtx();
    const err = await rejection(() =>
      createScriptExecutor({ enabled: false })({ scriptContent: 'touch /tmp/should-not-exist' }, ctx),
    );
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err).toMatchObject({ code: 'SCRIPT_DISABLED' });
    expect(ctx.log.lines).toEqual([]);
  });

  it('refuses an unknown interpreter as INVALID_PAYLOAD naming scriptInterpreter', async () => {
    const err = await rejection(() =>
      runScript({ scriptContent: 'puts 1', scriptInterpreter: 'ruby' as 'bash' }, scriptCtx()),
    );
    expect(err).toMatchObject({ code: 'INVALID_PAYLOAD' });
    expect(err.message).toBe(
      'invalid SCRIPT payload: scriptInterpreter: must be one of bash, sh, node, python3',
    );
  });

  it('fails with INTERPRETER_MISSING when the interpreter is not installed or not allowed', async () => {
    const missing = await rejection(() =>
      executor({ interpreters: { python3: '/nonexistent/bin/python3' } })(
        { scriptContent: 'print(1)', scriptInterpreter: 'python3' },
        scriptCtx(),
      ),
    );
    expect(missing).toBeInstanceOf(PermanentJobError);
    expect(missing).toMatchObject({ code: 'INTERPRETER_MISSING' });
    expect(missing.message).toContain('/nonexistent/bin/python3');
    const off = await rejection(() =>
      executor({ interpreters: { node: null } })(
        { scriptContent: 'console.log(1)', scriptInterpreter: 'node' },
        scriptCtx(),
      ),
    );
    expect(off).toMatchObject({ code: 'INTERPRETER_MISSING' });
  });

  it('fails with PRLIMIT_MISSING rather than run a script without limits', async () => {
    const err = await rejection(() =>
      executor({ path: '/nonexistent', interpreters: { bash: '/bin/bash' } })(
        { scriptContent: 'echo unlimited' },
        scriptCtx(),
      ),
    );
    expect(err).toMatchObject({ code: 'PRLIMIT_MISSING' });
  });

  it('refuses deployment defaults outside the bounds', () => {
    expect(() => executor({ defaults: { memoryMb: 1 } })).toThrow(/memoryMb/);
  });
});
