/**
 * `npm run test:cluster`: the scale-out suite on a real Temporal cluster (scripts/cluster-lib.ts: the pinned server
 * built from the Go module proxy, PostgreSQL persistence and SQL visibility). Not part of `npm test`: the first build
 * of the server alone takes longer than the whole unit and integration run (see docs/deployment.md).
 */
const tsJest = [
  'ts-jest',
  {
    useESM: true,
    diagnostics: false,
    tsconfig: { isolatedModules: true, module: 'NodeNext', moduleResolution: 'NodeNext' },
  },
];

/** @type {import('jest').Config} */
export default {
  rootDir: '../..',
  displayName: 'cluster',
  testMatch: ['<rootDir>/test/cluster/**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': tsJest },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testEnvironment: 'node',
  // The first run builds the server (8 to 25 minutes); later runs start the cluster in about 20 s.
  testTimeout: 180_000,
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
};
