type RunBundleModule = typeof import('../helpers/run-bundle.js');

export default async function globalTeardown(): Promise<void> {
  const { tsImport } = await import('tsx/esm/api');
  const { removeRunBundle } = (await tsImport('../helpers/run-bundle.ts', import.meta.url)) as RunBundleModule;
  removeRunBundle();
}
