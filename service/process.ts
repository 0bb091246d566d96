/** Runs `stop` once on SIGINT/SIGTERM, then exits; a second signal exits at once. */
export function onShutdown(stop: () => Promise<void>, log: (msg: string) => void = console.error): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    log(`${signal}: shutting down`);
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log(`shutdown failed: ${String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

/** SIGHUP reloads the policy (runbook section 6); a bad file is logged and the old policy keeps serving. */
export function onReloadSignal(reload: () => Promise<unknown>, log: (msg: string) => void = console.error): void {
  process.on('SIGHUP', () => {
    reload().then(
      () => log('SIGHUP: policy reloaded'),
      (err: unknown) => log(`SIGHUP: policy reload failed, keeping the previous policy: ${(err as Error).message}`),
    );
  });
}
