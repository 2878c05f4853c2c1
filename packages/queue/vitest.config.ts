import { defineConfig } from 'vitest/config';

// A loaded machine (CI runs several packages at once) needs more than vitest's 5 s for tests that
// create hundreds of jobs or wait for real servers; no test asserts on elapsed time.
export default defineConfig({
  test: { testTimeout: 60_000, hookTimeout: 60_000 },
});
