import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

const NODE_BUILTINS = [
  'node:*',
  'fs',
  'fs/*',
  'path',
  'os',
  'crypto',
  'http',
  'https',
  'net',
  'child_process',
  'process',
  'stream',
  'worker_threads',
  'dns',
  'tls',
  'zlib',
  'timers',
  'events',
  'buffer',
  'cluster',
  'readline',
  'v8',
  'vm',
];

/** Production code never reaches development, test or benchmark code (the Docker image carries none of it). */
const NOT_DEV = {
  group: ['**/dev/*', '**/test/*', '**/bench/*', '**/scripts/*'],
  message: 'Production code may not import dev/, test/, bench/ or scripts/.',
};
const layer = (files, forbidden, message) => ({
  files,
  rules: {
    'no-restricted-imports': [
      'error',
      { patterns: [NOT_DEV, ...(forbidden.length ? [{ group: forbidden, message }] : [])] },
    ],
  },
});

export default tseslint.config(
  { ignores: ['node_modules', 'dist', '.tools', '.data', 'coverage', 'bench/results', 'clients/*/dist'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    // One TypeScript program for every file: the root tsconfig includes them all (clients/ too), as `npm run typecheck`
    // does. The project service would build one more per client's own tsconfig (five in all): `eslint .` on two cores,
    // four runs each, alternated: 27-39 s (41-59 CPU-s) with the service, 21-30 s (33-45 CPU-s) with one program.
    languageOptions: { parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // The folders' dependency order (no circles): service → api | slack → gateway → workflows/domain. The HTTP API and
  // the Slack handlers reach Temporal through the gateway interface and never import each other.
  layer(
    [
      'activities/**/*.ts',
      'worker/**/*.ts',
      'domain/**/*.ts',
      'observability/**/*.ts',
      'config/**/*.ts',
      'temporal/**/*.ts',
    ],
    ['**/api/*', '**/slack/*', '**/service/*', '**/gateway/*'],
    'Only the composition roots (service/) wire these layers together.',
  ),
  layer(['gateway/**/*.ts'], ['**/api/*', '**/slack/*', '**/service/*'], 'The gateway depends on nobody above it.'),
  layer(['api/**/*.ts'], ['**/slack/*', '**/service/*'], 'The HTTP API does not know Slack; service/ plugs it in.'),
  layer(['slack/**/*.ts'], ['**/api/*', '**/service/*'], 'The Slack handlers do not know the HTTP API.'),
  {
    // Workflow code is replayed deterministically in a sandbox: no Node built-ins, no I/O modules, and only
    // type imports of activities and worker code.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            NOT_DEV,
            { group: NODE_BUILTINS, message: 'Workflow code may not use Node built-ins.' },
            {
              group: [
                '../activities/*',
                '../api/*',
                '../gateway/*',
                '../service/*',
                '../worker/*',
                '../observability/*',
                '../config/*',
                '../slack/*',
              ],
              allowTypeImports: true,
              message: 'Workflow code may only import types from non-workflow code.',
            },
            {
              group: [
                '@temporalio/client',
                '@temporalio/worker',
                '@temporalio/activity',
                '@slack/*',
                'fastify',
                'prom-client',
              ],
              message: 'Not allowed in workflow code.',
            },
          ],
        },
      ],
      'no-restricted-globals': ['error', 'process', 'setTimeout', 'setInterval', 'require'],
    },
  },
  prettier,
);
