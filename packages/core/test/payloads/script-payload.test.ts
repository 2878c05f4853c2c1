import { describe, expect, it } from 'vitest';
import { scriptPayloadSchema } from '../../src/payloads/script-payload.ts';
import { triggerInCode } from '../../src/payloads/template.ts';

function issues(input: unknown): Record<string, string> {
  const result = scriptPayloadSchema.safeParse(input);
  if (result.success) return {};
  return Object.fromEntries(result.error.issues.map((i) => [i.path.join('.'), i.message]));
}

describe('scriptPayloadSchema', () => {
  it('accepts a bare script, running it with bash', () => {
    expect(scriptPayloadSchema.parse({ scriptContent: 'echo hi' })).toEqual({
      scriptContent: 'echo hi',
      scriptInterpreter: 'bash',
    });
    expect(
      scriptPayloadSchema.parse({
        scriptContent: 'echo hi',
        scriptInterpreter: null,
        scriptEnv: null,
        timeoutSeconds: null,
        metadata: null,
      }),
    ).toMatchObject({ scriptInterpreter: 'bash', scriptEnv: null, metadata: null });
  });

  it('accepts every interpreter, an environment and every limit at its bounds', () => {
    for (const scriptInterpreter of ['bash', 'sh', 'node', 'python3'] as const) {
      expect(scriptPayloadSchema.parse({ scriptContent: 'x', scriptInterpreter }).scriptInterpreter).toBe(
        scriptInterpreter,
      );
    }
    const full = {
      scriptContent: 'print(1)',
      scriptInterpreter: 'python3',
      scriptEnv: { REGION: 'eu-west-1', _private: '', PYTHONPATH: '/opt/lib', EMPTY: '' },
      timeoutSeconds: 86_400,
      metadata: {
        limits: {
          cpuSeconds: 86_400,
          memoryMb: 64,
          maxProcesses: 8,
          maxFileSizeMb: 10_240,
          maxOutputBytes: 100 * 1024 * 1024,
        },
      },
    };
    expect(scriptPayloadSchema.parse(full)).toEqual(full);
  });

  it('requires script content', () => {
    expect(issues({})).toEqual({ scriptContent: 'is required' });
    expect(issues({ scriptContent: null })).toEqual({ scriptContent: 'is required' });
    expect(issues({ scriptContent: ' \n\t' })).toEqual({ scriptContent: 'is required' });
    expect(issues({ scriptContent: 42 })).toEqual({ scriptContent: 'must be a string' });
    expect(issues({ scriptContent: 'x'.repeat(1024 * 1024 + 1) })).toEqual({
      scriptContent: 'must be at most 1 MiB',
    });
  });

  it('refuses an unknown interpreter at scriptInterpreter', () => {
    for (const scriptInterpreter of ['ruby', 'python', 'BASH', '/bin/bash', '']) {
      expect(issues({ scriptContent: 'x', scriptInterpreter })).toEqual({
        scriptInterpreter: 'must be one of bash, sh, node, python3',
      });
    }
  });

  it('refuses bad variable names, loader and interpreter-injection variables, and CHRONOS_*', () => {
    expect(
      issues({
        scriptContent: 'x',
        scriptEnv: {
          '1ABC': 'x',
          'A-B': 'x',
          'A B': 'x',
          LD_PRELOAD: '/tmp/x.so',
          LD_LIBRARY_PATH: '/tmp',
          ld_audit: 'x',
          GLIBC_TUNABLES: 'x',
          NODE_OPTIONS: '--require /tmp/x.js',
          BASH_ENV: '/tmp/x.sh',
          CHRONOS_RUN_ID: 'forged',
          NUL: 'a\0b',
        },
      }),
    ).toEqual({
      'scriptEnv.1ABC': 'is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)',
      'scriptEnv.A-B': 'is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)',
      'scriptEnv.A B': 'is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)',
      'scriptEnv.LD_PRELOAD': 'is refused: it changes how the dynamic loader starts every program',
      'scriptEnv.LD_LIBRARY_PATH': 'is refused: it changes how the dynamic loader starts every program',
      'scriptEnv.ld_audit': 'is refused: it changes how the dynamic loader starts every program',
      'scriptEnv.GLIBC_TUNABLES': 'is refused: it changes how the dynamic loader starts every program',
      'scriptEnv.NODE_OPTIONS':
        'is refused: it makes the interpreter run other code first; put that in the script',
      'scriptEnv.BASH_ENV':
        'is refused: it makes the interpreter run other code first; put that in the script',
      'scriptEnv.CHRONOS_RUN_ID': 'is refused: CHRONOS_* variables are set by the worker',
      'scriptEnv.NUL': 'must not contain NUL',
    });
    expect(issues({ scriptContent: 'x', scriptEnv: { A: 1 } })).toHaveProperty(['scriptEnv.A']);
  });

  it('reports limits out of bounds, and misspelt limits, with their paths', () => {
    expect(
      issues({
        scriptContent: 'x',
        timeoutSeconds: 0,
        metadata: {
          limits: {
            cpuSeconds: 0,
            memoryMb: 63,
            maxProcesses: 4097,
            maxFileSizeMb: 1.5,
            maxOutputBytes: 100 * 1024 * 1024 + 1,
          },
        },
      }),
    ).toEqual({
      timeoutSeconds: expect.any(String),
      'metadata.limits.cpuSeconds': expect.any(String),
      'metadata.limits.memoryMb': expect.any(String),
      'metadata.limits.maxProcesses': expect.any(String),
      'metadata.limits.maxFileSizeMb': expect.any(String),
      'metadata.limits.maxOutputBytes': expect.any(String),
    });
    expect(issues({ scriptContent: 'x', metadata: { limits: { memoryMB: 512 } } })).toEqual({
      'metadata.limits': expect.stringContaining('memoryMB'),
    });
  });
});

describe('trigger values and code (triggerInCode, checked where a definition is validated)', () => {
  it('names the script when it inserts {{trigger.…}} (it would run as code), and says where the values go', () => {
    expect(triggerInCode('SCRIPT', { scriptContent: 'echo {{ trigger.body.name }}' })).toEqual({
      field: 'scriptContent',
      message: expect.stringMatching(/scriptEnv/),
    });
  });

  it('allows variables, run and job fields, an escaped {{, and trigger values in scriptEnv', () => {
    for (const scriptContent of [
      'echo {{var.GREETING}} {{run.id}} {{job.name}}',
      "docker inspect -f '{{{{.State}}'",
      'echo {{{{trigger.body.name}}',
    ])
      expect(triggerInCode('SCRIPT', { scriptContent }), scriptContent).toBeNull();
    expect(
      triggerInCode('SCRIPT', {
        scriptContent: 'echo "$NAME"',
        scriptEnv: { NAME: '{{trigger.body.name}}' },
      }),
    ).toBeNull();
    expect(triggerInCode('HTTP', { httpBody: '{{trigger.body}}' })).toBeNull();
  });

  it("is not part of the schema: a rendered script may hold the text (an escaped tag, a variable's value)", () => {
    expect(scriptPayloadSchema.safeParse({ scriptContent: 'echo {{trigger.body.name}}' }).success).toBe(true);
  });
});
