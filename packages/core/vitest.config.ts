import { defineConfig } from 'vitest/config';

// A few table tests walk every hour of a year in several zones: slow on a loaded 2-core machine.
export default defineConfig({
  test: { testTimeout: 60_000 },
});
