import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The HA and misfire files each run real scheduler processes against wall-clock schedules: one
    // file at a time keeps a 2-core machine from delaying a tick past a misfire threshold.
    fileParallelism: false,
    testTimeout: 240_000,
    hookTimeout: 120_000,
  },
});
