/** Bundles the workflow code once for the run's workflow suites (test/helpers/run-bundle.ts). */
type RunBundleModule = typeof import('../helpers/run-bundle.js');
type BundlesModule = typeof import('../../worker/workflow-bundles.js');
type NativeAddonModule = typeof import('../helpers/native-addon.js');

export default async function globalSetup(): Promise<void> {
  // Loaded outside Jest's module system, as test/integration/global-setup.ts is: tsx loads our `.ts` sources.
  const { tsImport } = await import('tsx/esm/api');
  const { bundleForRun } = (await tsImport('../helpers/run-bundle.ts', import.meta.url)) as RunBundleModule;
  const { buildWorkflowBundles } = (await tsImport(
    '../../worker/workflow-bundles.ts',
    import.meta.url,
  )) as BundlesModule;
  const { openNativeAddonChannels } = (await tsImport(
    '../helpers/native-addon.ts',
    import.meta.url,
  )) as NativeAddonModule;
  await Promise.all([bundleForRun(buildWorkflowBundles), openNativeAddonChannels()]);
}
