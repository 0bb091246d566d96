/**
 * `guard`: ask Slack Guard for a human approval from a shell step or CI job. The exit code is the outcome, stdout
 * carries the effective params as JSON (what to run), stderr says what happened; with `--json`, stdout carries every
 * outcome as JSON, refusals included. Service: GUARD_URL, GUARD_AGENT_KEY.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { defaultRepo } from '../../gate/src/index.js';
import {
  checkReceipt,
  GuardClient,
  GuardError,
  PolicyDeniedError,
  WaitTimeoutError,
  type ApprovalOutcome,
  type CreatedRequest,
  type CreateRequestInput,
  type Outcome,
} from '../../typescript/src/index.js';
import { HOOK_USAGE, runHook } from './hook.js';

const EXIT = { approved: 0, error: 1, denied: 2, expired: 3, cancelled: 4, pending: 5 } as const;

const EXIT_CODES = `Exit codes: 0 approved (or done), 1 error, 2 denied (by an approver or by the policy), 3 expired,
            4 cancelled, 5 still undecided when --timeout passed (run again with the same --idempotency-key)`;

const HELP: Record<string, string> = {
  request: `Usage: guard request --action NAME [--params JSON | --params-file FILE] [--justification TEXT] [--wait]
                     [--timeout SEC] [--sse] [--idempotency-key KEY] [--repo R] [--branch B] [--requester ID]
                     [--link URL]... [--json]

  Creates an approval request (see \`guard actions\` for the actions and their params). Without --wait, prints the
  created request. With --wait, waits for the decision and prints the effective params (approvers' edits applied)
  as JSON on stdout; --json prints the whole outcome with its receipt, and refusals as JSON too. The same
  --idempotency-key finds the same request again (a new key, printed on stderr, when none is given).
  Origin and requester default to GUARD_REPO / GITHUB_REPOSITORY (else the directory's name) and GUARD_REQUESTER /
  GITHUB_ACTOR.

${EXIT_CODES}`,
  status: `Usage: guard status REQUEST_ID [--json]

  Prints the request's state as JSON (with the receipt once decided).`,
  cancel: `Usage: guard cancel --token TOKEN [--reason TEXT] [--json]

  Withdraws an open request; prints its new state as JSON.`,
  verify: `Usage: guard verify RECEIPT|- [--public-key-file PEM] [--request-id ID] [--payload-hash H] [--action A]
                    [--outcome approved|denied|expired|cancelled|any] [--json]

  Checks a decision receipt offline: the signature (the key is fetched from GUARD_URL without --public-key-file),
  the expiry, and every value given. The outcome must be approved unless --outcome says otherwise. Exit 0 and the
  claims on stdout when valid; exit 1 and why not (on stderr, or as JSON with --json) otherwise.`,
  actions: `Usage: guard actions [--json]

  Lists the actions agents may request, as JSON: who approves, quorum, personas, timeout, whether approvers may
  edit the params, and the JSON Schema the params must pass.`,
  hook: HOOK_USAGE,
};

const USAGE = `Usage: guard <command> [options]     (service: GUARD_URL, agent key: GUARD_AGENT_KEY)

  guard request --action NAME [--params JSON] [--wait] [--json] ...   ask for an approval
  guard status REQUEST_ID                                             a request's state
  guard cancel --token TOKEN [--reason TEXT]                          withdraw a request
  guard verify RECEIPT|- [--public-key-file PEM] [...]                check a receipt offline
  guard actions                                                       the actions you may request
  guard hook claude-code [--policy FILE]                              a Claude Code PreToolUse hook (docs/agents.md)

  guard <command> --help for its options.

${EXIT_CODES}`;

let jsonOutput = false;
const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
const say = (line: string) => process.stderr.write(`guard: ${line}\n`);

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined) {
    process.stderr.write(`${USAGE}\n`);
    return EXIT.error;
  }
  if (command === 'help' || command === '--help' || command === '-h') {
    const topic = command === 'help' ? args[0] : undefined;
    process.stdout.write(`${(topic && HELP[topic]) || USAGE}\n`);
    return EXIT.approved;
  }
  if (command === 'hook') return runHook(args);
  const run = COMMANDS[command];
  if (!run) {
    process.stderr.write(`guard: unknown command '${command}'\n\n${USAGE}\n`);
    return EXIT.error;
  }
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${HELP[command]}\n`);
    return EXIT.approved;
  }
  jsonOutput = args.includes('--json');
  return run(args);
}

const json = { json: { type: 'boolean', default: false } } as const;
const parse = <O extends NonNullable<ParseArgsConfig['options']>>(command: string, args: string[], options: O) => {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(command, (err as Error).message);
  }
};

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  request,
  status,
  cancel,
  verify,
  actions,
};

async function request(args: string[]): Promise<number> {
  const { values } = parse('request', args, {
    action: { type: 'string' },
    params: { type: 'string' },
    'params-file': { type: 'string' },
    justification: { type: 'string' },
    wait: { type: 'boolean', default: false },
    timeout: { type: 'string' },
    sse: { type: 'boolean', default: false },
    'idempotency-key': { type: 'string' },
    repo: { type: 'string' },
    branch: { type: 'string' },
    requester: { type: 'string' },
    link: { type: 'string', multiple: true },
    ...json,
  });
  if (!values.action) throw new UsageError('request', '--action is required (guard actions lists them)');
  const input = requestInput(values.action, values);
  const timeoutSec = values.timeout === undefined ? undefined : seconds(values.timeout);
  const client = GuardClient.fromEnv();
  // Chosen here so it can be printed: the same key resumes the wait for the same request.
  const idempotencyKey = values['idempotency-key'] ?? randomUUID();
  if (!values.wait) {
    print(await client.createRequest(input, { idempotencyKey }));
    return EXIT.approved;
  }
  let created: CreatedRequest | null = null;
  try {
    const outcome = await client.requestApproval(input, {
      wait: true,
      throwOnRejection: false,
      idempotencyKey,
      transport: values.sse ? 'sse' : 'long-poll',
      ...(timeoutSec === undefined ? {} : { timeoutMs: timeoutSec * 1000 }),
      onCreated: (c) => {
        created = c;
        say(
          `${c.requestId} ${c.idempotentReplay ? 'found again' : 'created'} (${c.status}), waiting for a decision ` +
            `(idempotency key ${idempotencyKey})`,
        );
      },
    });
    return report(outcome, values.json);
  } catch (err) {
    if (!(err instanceof WaitTimeoutError) || !created) throw err;
    const { requestId, expiresAt } = created as CreatedRequest;
    const state = err.last?.status ?? (created as CreatedRequest).status;
    say(`${requestId} still ${state} after ${timeoutSec}s; wait again with --idempotency-key ${idempotencyKey}`);
    if (values.json) print({ decided: false, status: state, requestId, expiresAt, idempotencyKey });
    return EXIT.pending;
  }
}

function requestInput(
  action: string,
  values: Partial<Record<'params' | 'params-file' | 'justification' | 'repo' | 'branch' | 'requester', string>> & {
    link?: string[];
  },
): CreateRequestInput {
  const env = process.env;
  const repo = values.repo ?? defaultRepo(env, process.cwd());
  const branch = values.branch ?? env.GITHUB_REF_NAME;
  return {
    action,
    params: paramsOf(values),
    meta: {
      origin: { repo, ...(branch ? { branch } : {}), ...(env.GITHUB_RUN_ID ? { run_id: env.GITHUB_RUN_ID } : {}) },
      requester: {
        id: values.requester ?? env.GUARD_REQUESTER ?? env.GITHUB_ACTOR ?? env.USER ?? 'cli',
        source: 'agent',
      },
      justification: values.justification ?? env.GUARD_JUSTIFICATION ?? `${action} requested from ${repo} (guard CLI)`,
      ...(values.link ? { links: values.link } : {}),
    },
  };
}

function paramsOf(values: { params?: string; 'params-file'?: string }): Record<string, unknown> {
  const text = values['params-file'] ? readFileSync(values['params-file'], 'utf8') : values.params;
  if (text === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError('request', `--params is not JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError('request', '--params must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

const EXIT_BY_OUTCOME: Record<Outcome, number> = {
  approved: EXIT.approved,
  denied: EXIT.denied,
  expired: EXIT.expired,
  cancelled: EXIT.cancelled,
};

function report(outcome: ApprovalOutcome, asJson: boolean): number {
  const by = outcome.decidedBy ? ` by ${outcome.decidedBy}` : '';
  const why = outcome.reason ? `: ${outcome.reason}` : '';
  say(`${outcome.requestId} ${outcome.status}${by}${why}${outcome.overridden ? ' (params edited)' : ''}`);
  if (asJson) print(outcome);
  else if (outcome.status === 'approved') print(outcome.effectiveParams);
  return EXIT_BY_OUTCOME[outcome.status];
}

async function status(args: string[]): Promise<number> {
  const { positionals } = parse('status', args, json);
  const [requestId] = positionals;
  if (!requestId) throw new UsageError('status', 'REQUEST_ID is required');
  print(await GuardClient.fromEnv().status(requestId));
  return EXIT.approved;
}

async function cancel(args: string[]): Promise<number> {
  const { values } = parse('cancel', args, { token: { type: 'string' }, reason: { type: 'string' }, ...json });
  if (!values.token) throw new UsageError('cancel', '--token is required');
  print(await GuardClient.fromEnv().cancel(values.token, values.reason));
  return EXIT.approved;
}

async function actions(args: string[]): Promise<number> {
  parse('actions', args, json);
  print(await GuardClient.fromEnv().actions());
  return EXIT.approved;
}

const OUTCOMES = ['approved', 'denied', 'expired', 'cancelled', 'any'] as const;

async function verify(args: string[]): Promise<number> {
  const { values, positionals } = parse('verify', args, {
    'public-key-file': { type: 'string' },
    'request-id': { type: 'string' },
    'payload-hash': { type: 'string' },
    action: { type: 'string' },
    outcome: { type: 'string' },
    ...json,
  });
  const [given] = positionals;
  if (!given) throw new UsageError('verify', 'RECEIPT is required (or - to read it from stdin)');
  const outcome = values.outcome ?? 'approved';
  if (!(OUTCOMES as readonly string[]).includes(outcome)) {
    throw new UsageError('verify', `--outcome must be one of ${OUTCOMES.join(', ')}`);
  }
  const receipt = (given === '-' ? readFileSync(0, 'utf8') : given).trim();
  const pem = values['public-key-file']
    ? readFileSync(values['public-key-file'], 'utf8')
    : (await GuardClient.fromEnv().receiptKey()).pem;
  const check = checkReceipt(receipt, pem, {
    requestId: values['request-id'],
    payloadHash: values['payload-hash'],
    action: values.action,
    outcome: outcome as (typeof OUTCOMES)[number],
  });
  if (!check.ok) {
    say(`receipt NOT valid (${check.problem}): ${check.message}`);
    if (values.json) print({ valid: false, problem: check.problem, message: check.message });
    return EXIT.error;
  }
  print(check.claims);
  return EXIT.approved;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UsageError('request', `--timeout must be seconds, not '${value}'`);
  return n;
}

class UsageError extends Error {
  constructor(
    readonly command: string,
    message: string,
  ) {
    super(message);
  }
}

/** Every failure: one line on stderr, the exit code, and with --json the refusal on stdout. */
function exitFor(err: unknown): number {
  if (err instanceof UsageError) {
    say(`${err.message}\n\n${HELP[err.command] ?? USAGE}`);
    if (jsonOutput) print({ error: 'usage', message: err.message });
    return EXIT.error;
  }
  const denied = err instanceof PolicyDeniedError;
  if (denied) say(`denied by policy: ${err.body?.detail ?? err.message} (guard actions lists the actions)`);
  else say(err instanceof GuardError ? err.message : `error: ${(err as Error).message}`);
  if (jsonOutput) {
    print(
      err instanceof GuardError
        ? { error: err.code, status: err.status, message: err.message, ...(err.body ? { body: err.body } : {}) }
        : { error: 'error', message: (err as Error).message },
    );
  }
  return denied ? EXIT.denied : EXIT.error;
}

process.exitCode = await main(process.argv.slice(2)).catch(exitFor);
