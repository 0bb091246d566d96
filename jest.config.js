/**
 * Jest runs the TypeScript sources as native ESM (see the `test` script's --experimental-vm-modules). SWC strips the
 * types file by file (the type check is `npm run typecheck`'s): a fresh clone has no transform cache, and ts-jest
 * costs seconds per worker and suite there.
 */
const swc = [
  '@swc/jest',
  {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    // @swc/jest picks the module type itself: ESM for the suites, CommonJS for the global setup.
    module: { type: 'es6', ignoreDynamic: true },
    sourceMaps: 'inline',
  },
];
/** What every suite shares, the cluster suite (test/cluster/jest.config.js) included. */
export const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    // Fastify's inject needs cookie@2, ESM only: see the stand-in's comment.
    '^cookie$': '<rootDir>/test/helpers/cookie-cjs.cjs',
  },
  testEnvironment: 'node',
};

/** @type {import('jest').Config} */
export default {
  testTimeout: 60_000,
  testSequencer: '<rootDir>/test/sequencer.js',
  // Every temporary file of the suites in one directory, removed at the end (test/run-tmpdir.js). The projects' own
  // global setups (a dev server's SQLite file, the run's workflow bundle) remove theirs themselves.
  globalSetup: '<rootDir>/test/run-tmpdir-setup.js',
  globalTeardown: '<rootDir>/test/run-tmpdir-teardown.js',
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    { ...common, displayName: 'api', testMatch: ['<rootDir>/test/api/**/*.test.ts'] },
    {
      ...common,
      displayName: 'workflow',
      testMatch: ['<rootDir>/test/workflow/**/*.test.ts'],
      globalSetup: '<rootDir>/test/workflow/global-setup.ts',
      globalTeardown: '<rootDir>/test/workflow/global-teardown.ts',
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/integration/global-setup.ts',
      globalTeardown: '<rootDir>/test/integration/global-teardown.ts',
    },
  ],
};
