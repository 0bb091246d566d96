/** The policy the load harness runs against: one action per scenario. `--print-policy` prints it for `--url` runs. */
export const BENCH_ACTIONS = {
  /** Created, approved with one click. */
  simple: 'bench_simple',
  /** Left alone: escalates 1 s before it expires, 3 s after creation. */
  timer: 'bench_timer',
  /** Held open while the others are measured. */
  pending: 'bench_pending',
} as const;

export const BENCH_POLICY = `# Written by bench/load-sim.ts: the actions its scenarios use.
routing:
  defaultChannel: C_BENCH
  defaultTimeoutSec: 3600
defaults:
  unknownAction: deny
  superApprovers: [U_BENCH_ADMIN]
actions:
  ${BENCH_ACTIONS.simple}:
    approvers: { allowSlackIds: [U_BENCH_APPROVER], minApprovals: 1 }
    timeoutSec: 3600
  ${BENCH_ACTIONS.timer}:
    approvers: { allowSlackIds: [U_BENCH_APPROVER], minApprovals: 1 }
    timeoutSec: 3
    escalation: { escalateBeforeSec: 1, escalationChannel: C_BENCH_ESCALATIONS }
  ${BENCH_ACTIONS.pending}:
    approvers: { allowSlackIds: [U_BENCH_APPROVER], minApprovals: 1 }
    timeoutSec: 7200
`;

/** The timer action's escalation lead, as the policy above says. */
export const TIMER_ESCALATE_BEFORE_MS = 1000;
