/** Reading the fake Slack the way a person reads the channel: which message, what it says, which buttons. */
import type { FakeMessage } from '../../dev/fake-slack.js';
import { eventually as until } from '../helpers/eventually.js';
import type { Harness } from './harness.js';

type Block = Record<string, unknown>;

/** The request's top-level message (the one whose footer names the request id), if posted. */
export function messageOf(h: Harness, requestId: string): FakeMessage | undefined {
  return [...h.fakeSlack.messages.values()].find(
    (m) => !m.thread_ts && JSON.stringify(m.blocks).includes(`Request: ${requestId}`),
  );
}

/** Polls the fake Slack until the request's message satisfies `ok` (bounds are generous: 2 shared cores). */
export function waitForMessage(
  h: Harness,
  requestId: string,
  ok: (m: FakeMessage) => boolean = () => true,
  timeoutMs = 20_000,
): Promise<FakeMessage> {
  return until(
    () => {
      const m = messageOf(h, requestId);
      if (m && ok(m)) return m;
      throw new Error(m ? textOf(m) : 'not posted');
    },
    { timeoutMs, what: `the message of ${requestId}` },
  );
}

/** Every text a reader sees in the message, one line per block. */
export function textOf(m: { blocks: unknown[] }): string {
  return (m.blocks as Block[]).map(blockText).join('\n');
}

function blockText(b: Block): string {
  const parts: string[] = [];
  const text = b.text as { text?: string } | undefined;
  if (text?.text) parts.push(text.text);
  for (const f of (b.fields as Array<{ text: string }> | undefined) ?? []) parts.push(f.text);
  for (const e of (b.elements as Array<{ text?: unknown }> | undefined) ?? []) {
    if (typeof e.text === 'string') parts.push(e.text);
    else if (e.text && typeof e.text === 'object') parts.push((e.text as { text: string }).text);
  }
  return parts.join(' | ');
}

export interface ButtonInfo {
  actionId: string;
  value: string;
  blockId: string;
}

export function buttonsOf(m: { blocks: unknown[] }): ButtonInfo[] {
  return (m.blocks as Block[])
    .filter((b) => b.type === 'actions')
    .flatMap((b) =>
      (b.elements as Array<{ action_id: string; value: string }>).map((e) => ({
        actionId: e.action_id,
        value: e.value,
        blockId: String(b.block_id),
      })),
    );
}

export const actionIds = (m: { blocks: unknown[] }): string[] => buttonsOf(m).map((b) => b.actionId);

/** Sum of a counter's samples whose labels include `labels`. */
export async function counter(h: Harness, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = h.metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Resolves once `ok()` holds; fails after `timeoutMs` (test/helpers/eventually.ts, with a yes/no probe). */
export async function eventually(ok: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  await until(async () => ((await ok()) ? true : undefined), { timeoutMs });
}
