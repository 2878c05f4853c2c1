import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Every start of the launcher runs three apps (and sometimes a PostgreSQL): one file at a time
    // keeps a 2-core machine from timing out, and the files never compete for ports.
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 120_000,
  },
});
