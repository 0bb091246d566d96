import { loadPolicyFile, type LoadedPolicy } from '../domain/policy-loader.js';

/** The policy new requests are evaluated against; requests in flight keep the plan frozen in their workflow. */
export class PolicyStore {
  private current: LoadedPolicy | null = null;
  constructor(readonly path: string) {}

  get loaded(): LoadedPolicy | null {
    return this.current;
  }

  /** Loads the file; on any error the previous policy stays in force and the error propagates. */
  async reload(): Promise<LoadedPolicy> {
    const next = await loadPolicyFile(this.path);
    this.current = next;
    return next;
  }
}
