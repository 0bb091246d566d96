/**
 * `npm run dev:slack`: the fake Slack Web API (dev/fake-slack.ts) and the whole service wired to it, so the Slack
 * flow can be walked without a workspace. Every Slack call is printed the way the channel would show it; drive the
 * flow with `npm run dev:walkthrough`, which sends signed clicks as Slack would.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startFakeSlack, type FakeSlackCall } from './fake-slack.js';
import { failStartup, startAll } from '../service/stack.js';

/** What the walkthrough signs with unless SLACK_SIGNING_SECRET says otherwise (both read the same variable). */
export const DEV_SIGNING_SECRET = 'dev-slack-signing-secret';
const DEV_BOT_TOKEN = 'xoxb-dev-slack';
const DEV_POLICY = fileURLToPath(new URL('./walkthrough-policy.yaml', import.meta.url));

type Block = Record<string, unknown>;

function blockLines(block: Block): string[] {
  const lines: string[] = [];
  const text = (block.text as { text?: string } | undefined)?.text;
  if (text) lines.push(text);
  for (const f of (block.fields as Array<{ text: string }> | undefined) ?? []) lines.push(f.text.replace('\n', ': '));
  const elements = (block.elements as Array<Record<string, unknown>> | undefined) ?? [];
  if (block.type === 'actions') {
    lines.push(elements.map((e) => `[${(e.text as { text: string }).text} → ${String(e.action_id)}]`).join(' '));
  } else {
    for (const e of elements) if (typeof e.text === 'string') lines.push(e.text);
  }
  if (block.type === 'input') {
    const el = block.element as Record<string, unknown>;
    lines.push(`${String(block.block_id)}: [${String(el.initial_value ?? '')}]`);
  }
  return lines;
}

/** One Slack call as a person in the channel would notice it. */
function describeCall(call: FakeSlackCall): string {
  const { method, args, status } = call;
  const failed = status !== 200 || (call.response as { ok?: boolean }).ok === false;
  const head = `── slack ${method} ${failed ? `FAILED (${status} ${JSON.stringify(call.response)})` : ''}`.trim();
  if (failed) return head;
  const view = args.view as { blocks?: Block[]; callback_id?: string } | undefined;
  const blocks = (view?.blocks ?? (args.blocks as Block[] | undefined) ?? []).flatMap(blockLines);
  const body = blocks.length > 0 ? blocks : [String(args.text ?? '')];
  const target =
    method === 'chat.postEphemeral'
      ? `${String(args.channel)}, seen only by ${String(args.user)}`
      : [args.channel, args.thread_ts ? `thread ${String(args.thread_ts)}` : args.ts, view?.callback_id]
          .filter(Boolean)
          .join(' ');
  return [`${head} ${target}`, ...body.map((l) => `   │ ${l.replaceAll('\n', '\n   │ ')}`)].join('\n');
}

async function main(): Promise<void> {
  const fake = await startFakeSlack({
    port: Number(process.env.FAKE_SLACK_PORT ?? 3999),
    onCall: (call) => console.log(describeCall(call)),
  });
  console.error(`[guard] Fake Slack   ${fake.url}`);
  const stack = await startAll(
    {
      SLACK_API_URL: fake.url,
      SLACK_BOT_TOKEN: DEV_BOT_TOKEN,
      SLACK_SIGNING_SECRET: process.env.SLACK_SIGNING_SECRET ?? DEV_SIGNING_SECRET,
      POLICY_PATH: process.env.POLICY_PATH ?? DEV_POLICY,
    },
    () => fake.close(),
  );
  // The walkthrough also asks Temporal about each click: name the server, so a non-default port works as printed.
  const { TEMPORAL_ADDRESS: temporal, TEMPORAL_NAMESPACE: namespace } = stack.config;
  const ns = namespace === 'default' ? '' : ` TEMPORAL_NAMESPACE=${namespace}`;
  console.error(
    `[guard] Walk through it: GUARD_URL=${stack.apiUrl} TEMPORAL_ADDRESS=${temporal}${ns} npm run dev:walkthrough`,
  );
}

function isMainModule(): boolean {
  const entry = process.argv[1];
  return entry !== undefined && realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
}

if (isMainModule()) main().catch(failStartup);
