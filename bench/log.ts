/** The harness's progress lines on stderr, each with the seconds since it started (where a run's time goes). */
const t0 = performance.now();

export const log = (msg: string) =>
  console.error(`[load-sim +${((performance.now() - t0) / 1000).toFixed(1)} s] ${msg}`);
