/**
 * `guard`: ask Slack Guard for a human approval from a shell step or CI job. The exit code is the outcome, stdout
 * carries the effective params as JSON (what to run), stderr says what happened. Service: GUARD_URL, GUARD_AGENT_KEY.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import {
  GuardClient,
  GuardError,
  PolicyDeniedError,
  verifyReceipt,
  WaitTimeoutError,
  type ApprovalOutcome,
  type CreateRequestInput,
  type Outcome,
} from '../../typescript/src/index.js';
import { runHook } from './hook.js';

const EXIT = { approved: 0, error: 1, denied: 2, expired: 3, cancelled: 4, pending: 5 } as const;

const USAGE = `Usage: guard <command> [options]     (service: GUARD_URL, agent key: GUARD_AGENT_KEY)

  guard request --action NAME [--params JSON | --params-file FILE] [--justification TEXT] [--wait]
                [--timeout SEC] [--sse] [--idempotency-key KEY] [--repo R] [--branch B] [--requester ID]
                [--link URL]... [--json]
      Without --wait: prints the created request. With --wait: waits for the decision and prints the
      effective params (edits applied) as JSON on stdout; --json prints the whole outcome with its receipt.
  guard status REQUEST_ID          the request's state as JSON
  guard cancel --token TOKEN [--reason TEXT]
  guard verify RECEIPT|- [--public-key-file PEM] [--request-id ID] [--payload-hash H] [--action A]
                [--outcome O]      checks a receipt offline (the key is fetched from GUARD_URL if no file)
  guard hook claude-code [--policy FILE]
                                   a Claude Code PreToolUse hook: gated tool calls wait for Slack (docs/agents.md)

Exit codes: 0 approved (or done), 1 error, 2 denied (by an approver or by the policy), 3 expired,
            4 cancelled, 5 still undecided when --timeout passed (run again with the same --idempotency-key)`;

const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
const say = (line: string) => process.stderr.write(`guard: ${line}\n`);

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === 'request') return request(args);
  if (command === 'status') return status(args);
  if (command === 'cancel') return cancel(args);
  if (command === 'verify') return verify(args);
  if (command === 'hook') return runHook(args);
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.approved;
  }
  process.stderr.write(`${command === undefined ? '' : `guard: unknown command '${command}'\n\n`}${USAGE}\n`);
  return EXIT.error;
}

async function request(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
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
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.action) throw new UsageError('--action is required');
  const input = requestInput(values.action, values);
  const client = GuardClient.fromEnv();
  // Chosen here so it can be printed: the same key resumes the wait for the same request.
  const idempotencyKey = values['idempotency-key'] ?? randomUUID();
  if (!values.wait) {
    print(await client.createRequest(input, { idempotencyKey }));
    return EXIT.approved;
  }
  const timeoutSec = values.timeout === undefined ? undefined : seconds(values.timeout);
  try {
    const outcome = await client.requestApproval(input, {
      wait: true,
      throwOnRejection: false,
      idempotencyKey,
      transport: values.sse ? 'sse' : 'long-poll',
      ...(timeoutSec === undefined ? {} : { timeoutMs: timeoutSec * 1000 }),
      onCreated: (c) =>
        say(`${c.requestId} ${c.idempotentReplay ? 'found again' : 'created'} (${c.status}), waiting for a decision`),
    });
    return report(outcome, values.json);
  } catch (err) {
    if (!(err instanceof WaitTimeoutError)) throw err;
    say(
      `still ${err.last?.status ?? 'open'} after ${timeoutSec}s; wait again with --idempotency-key ${idempotencyKey}`,
    );
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
  const repo = values.repo ?? env.GUARD_REPO ?? env.GITHUB_REPOSITORY ?? basename(process.cwd());
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
    throw new UsageError(`--params is not JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError('--params must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

const EXIT_BY_OUTCOME: Record<Outcome, number> = {
  approved: EXIT.approved,
  denied: EXIT.denied,
  expired: EXIT.expired,
  cancelled: EXIT.cancelled,
};

function report(outcome: ApprovalOutcome, json: boolean): number {
  const by = outcome.decidedBy ? ` by ${outcome.decidedBy}` : '';
  const why = outcome.reason ? `: ${outcome.reason}` : '';
  say(`${outcome.requestId} ${outcome.status}${by}${why}${outcome.overridden ? ' (params edited)' : ''}`);
  if (json) print(outcome);
  else if (outcome.status === 'approved') print(outcome.effectiveParams);
  return EXIT_BY_OUTCOME[outcome.status];
}

async function status(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true });
  const [requestId] = positionals;
  if (!requestId) throw new UsageError('guard status REQUEST_ID');
  print(await GuardClient.fromEnv().status(requestId));
  return EXIT.approved;
}

async function cancel(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { token: { type: 'string' }, reason: { type: 'string' } } });
  if (!values.token) throw new UsageError('--token is required');
  print(await GuardClient.fromEnv().cancel(values.token, values.reason));
  return EXIT.approved;
}

async function verify(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'public-key-file': { type: 'string' },
      'request-id': { type: 'string' },
      'payload-hash': { type: 'string' },
      action: { type: 'string' },
      outcome: { type: 'string' },
    },
  });
  const [given] = positionals;
  if (!given) throw new UsageError('guard verify RECEIPT (or - to read it from stdin)');
  const receipt = (given === '-' ? readFileSync(0, 'utf8') : given).trim();
  const pem = values['public-key-file']
    ? readFileSync(values['public-key-file'], 'utf8')
    : (await GuardClient.fromEnv().receiptKey()).pem;
  const claims = verifyReceipt(receipt, pem, {
    requestId: values['request-id'],
    payloadHash: values['payload-hash'],
    action: values.action,
    outcome: values.outcome as Outcome | undefined,
  });
  if (!claims) {
    say('receipt NOT valid: tampered, signed by another key, or not matching the expected values');
    return EXIT.error;
  }
  print(claims);
  return EXIT.approved;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--timeout must be a number of seconds, not '${value}'`);
  return n;
}

class UsageError extends Error {}

function exitFor(err: unknown): number {
  if (err instanceof PolicyDeniedError) {
    say(`denied by policy: ${err.body?.detail ?? err.message}`);
    return EXIT.denied;
  }
  if (err instanceof GuardError) say(err.message);
  else if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    say(`${(err as Error).message}\n\n${USAGE}`);
  } else say(`error: ${(err as Error).message}`);
  return EXIT.error;
}

process.exitCode = await main(process.argv.slice(2)).catch(exitFor);
