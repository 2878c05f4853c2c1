import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/index.ts';

function issuesOf(env: Record<string, string>): ConfigError['issues'] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  return [];
}

describe('SCRIPT job settings', () => {
  it('sandbox scripts by default, with nothing more visible or hidden than the built-in paths', () => {
    const c = loadConfig({});
    expect(c.worker.scriptIsolation).toBe('namespaces');
    expect(c.worker.scriptRunAs).toBeUndefined();
    expect(c.worker.scriptVisiblePaths).toEqual([]);
    expect(c.worker.scriptHiddenPaths).toEqual([]);
  });

  it('read the opt-out and lists of absolute paths', () => {
    const c = loadConfig({
      SCRIPT_ISOLATION: 'none',
      SCRIPT_VISIBLE_PATHS: '/opt/tools, /data/out:rw',
      SCRIPT_HIDDEN_PATHS: '/etc/chronos',
    });
    expect(c.worker.scriptIsolation).toBe('none');
    expect(c.worker.scriptVisiblePaths).toEqual(['/opt/tools', '/data/out:rw']);
    expect(c.worker.scriptHiddenPaths).toEqual(['/etc/chronos']);
  });

  it('refuse an unknown isolation, relative paths and / itself, naming the variable', () => {
    expect(issuesOf({ SCRIPT_ISOLATION: 'container' })).toEqual([
      { variable: 'SCRIPT_ISOLATION', message: expect.stringContaining('must be namespaces or none') },
    ]);
    const issues = issuesOf({ SCRIPT_VISIBLE_PATHS: 'data/out:rw,/:rw', SCRIPT_HIDDEN_PATHS: 'etc' });
    expect(issues.map((i) => i.variable).sort()).toEqual([
      'SCRIPT_HIDDEN_PATHS',
      'SCRIPT_VISIBLE_PATHS',
      'SCRIPT_VISIBLE_PATHS',
    ]);
    expect(issues.map((i) => i.message).join('\n')).toMatch(
      /absolute paths other than \/ \(got "data\/out:rw"\)/,
    );
  });
});
