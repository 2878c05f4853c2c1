import { defineConfig } from 'vitest/config';

// bcrypt at cost 12 takes seconds on a loaded 2-core machine.
export default defineConfig({
  test: { testTimeout: 30_000, hookTimeout: 60_000 },
});
