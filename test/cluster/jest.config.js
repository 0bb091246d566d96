/**
 * `npm run test:cluster`: the scale-out suite on a real Temporal cluster (scripts/cluster-lib.ts: the pinned server
 * built from the Go module proxy, PostgreSQL persistence and SQL visibility). Not part of `npm test`: the first build
 * of the server alone takes longer than the whole unit and integration run (see docs/deployment.md).
 */
import { common } from '../../jest.config.js';

/** @type {import('jest').Config} */
export default {
  rootDir: '../..',
  displayName: 'cluster',
  testMatch: ['<rootDir>/test/cluster/**/*.test.ts'],
  ...common,
  // The first run builds the server (8 to 25 minutes); later runs start the cluster in about 20 s.
  testTimeout: 180_000,
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
};
