import { loadPolicyFile, PolicyError, type LoadedPolicy } from '../domain/policy-loader.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';

export type ReloadSource = 'startup' | 'api' | 'sighup';

/** The policy new requests are evaluated against; requests in flight keep the plan frozen in their workflow. */
export class PolicyStore {
  private current: LoadedPolicy | null = null;
  /** Reloads run one at a time, so a slow read can never overwrite a newer policy with an older file. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly metrics: Metrics,
    private readonly audit: AuditLog,
  ) {}

  get loaded(): LoadedPolicy | null {
    return this.current;
  }

  /** Loads the file; on any error the previous policy stays in force, the failure is audited and rethrown. */
  reload(source: ReloadSource, actor = 'system'): Promise<LoadedPolicy> {
    const run = this.queue.then(() => this.load(source, actor));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async load(source: ReloadSource, actor: string): Promise<LoadedPolicy> {
    try {
      const next = await loadPolicyFile(this.path);
      this.current = next;
      const actions = Object.keys(next.policy.actions);
      if (source !== 'startup') this.metrics.policyReloads.inc({ source });
      this.audit.emit({
        event: 'policy_reloaded',
        actor,
        source,
        hash: next.hash,
        actions,
        ...(next.warnings.length > 0 ? { warnings: next.warnings } : {}),
      });
      return next;
    } catch (err) {
      this.audit.emit({
        event: 'policy_reload_failed',
        actor,
        source,
        detail: (err as Error).message,
        ...(err instanceof PolicyError ? { errors: err.errors } : {}),
        keptHash: this.current?.hash ?? null,
      });
      throw err;
    }
  }
}
