import type { Plan } from './plan.js';
import { REDACTED, redactParams } from './redaction.js';
import type { CreateRequest } from './request-schema.js';
import { isTerminal, type OverrideRecord, type RequestState } from './request-state.js';

/** Slack Block Kit objects are plain JSON; typed loosely here so this module stays free of Slack's SDK. */
export type Block = Record<string, unknown>;
export interface SlackMessage {
  text: string;
  blocks: Block[];
}

export const DECISION_BLOCK_PREFIX = 'decide:';
const OUTCOME_ICON: Record<string, string> = { approved: '✅', denied: '⛔', expired: '⌛', cancelled: '🚫' };

const plain = (text: string) => ({ type: 'plain_text', text: text.slice(0, 150), emoji: true });
const mrkdwn = (text: string) => ({ type: 'mrkdwn', text: text.slice(0, 3000) });
const button = (actionId: string, text: string, value: string, style?: 'primary' | 'danger') => ({
  type: 'button',
  action_id: actionId,
  text: plain(text),
  value,
  ...(style ? { style } : {}),
});

export function userRef(id: string): string {
  return /^[UW][A-Z0-9]+$/.test(id) ? `<@${id}>` : id;
}

/** The request message (SPEC section 4), rendered from the state alone so every update shows the truth. */
export function renderRequestMessage(request: CreateRequest, plan: Plan, state: RequestState): SlackMessage {
  const blocks: Block[] = [
    { type: 'header', text: plain(`Approval requested: ${request.action}`) },
    { type: 'section', fields: summaryFields(request) },
    {
      type: 'section',
      text: mrkdwn(
        `*Parameters*\n\`\`\`${JSON.stringify(redactParams(state.effectiveParams, plan.redaction), null, 2)}\`\`\``,
      ),
    },
    ...editBlocks(plan, state),
    ...personaBlocks(plan, state),
    ...decisionBlocks(plan, state),
    { type: 'context', elements: [mrkdwn(statusLine(state))] },
  ];
  return { text: `${request.action}: ${statusText(state)}`, blocks };
}

function summaryFields(request: CreateRequest) {
  const { origin, requester, justification } = request.meta;
  const where = [origin.repo, origin.branch && `@${origin.branch}`, origin.pr !== undefined && ` PR #${origin.pr}`]
    .filter(Boolean)
    .join('');
  return [
    mrkdwn(`*Requester*\n${requester.display ?? userRef(requester.id)} (${requester.source})`),
    mrkdwn(`*Origin*\n${where}`),
    mrkdwn(`*Justification*\n${justification}`),
  ];
}

/** Who changed what (hidden values stay hidden), and whose approvals the edit voided. */
function editBlocks(plan: Plan, state: RequestState): Block[] {
  if (state.overrides.length === 0) return [];
  const side = (diff: OverrideRecord['diff'], end: 'from' | 'to') =>
    redactParams(Object.fromEntries(Object.entries(diff).map(([k, d]) => [k, d[end]])), plan.redaction);
  const lines = state.overrides.map(({ by, diff }) => {
    const from = side(diff, 'from');
    const to = side(diff, 'to');
    const changes = Object.keys(diff).map((k) => `\`${k}\` ${shortValue(from[k])} → ${shortValue(to[k])}`);
    return `✏️ Edited by ${userRef(by)}: ${changes.join(', ')}`;
  });
  const current = new Set(state.approvals.map((a) => a.userId));
  const voided = [...new Set(state.voidedApprovals.map((a) => a.userId))].filter((id) => !current.has(id));
  if (voided.length > 0) {
    lines.push(`Approvals given to earlier values no longer count: ${voided.map(userRef).join(', ')}`);
  }
  return [{ type: 'context', elements: [mrkdwn(lines.join('\n'))] }];
}

function shortValue(value: unknown): string {
  if (value === REDACTED) return REDACTED;
  const text = JSON.stringify(value) ?? 'null';
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

function personaBlocks(plan: Plan, state: RequestState): Block[] {
  if (plan.personas.length === 0) return [];
  const lines = plan.personas.map(({ name }) => {
    const ack = state.personaState[name];
    return ack?.acked ? `✅ *${name}* acknowledged by ${userRef(ack.by ?? '')}` : `⏳ *${name}* pending`;
  });
  const blocks: Block[] = [{ type: 'section', text: mrkdwn(`*Required personas*\n${lines.join('\n')}`) }];
  const pending = plan.personas.filter(({ name }) => !state.personaState[name]?.acked);
  if (!isTerminal(state.status) && pending.length > 0) {
    blocks.push({
      type: 'actions',
      block_id: 'personas',
      elements: pending.map(({ name }) => button(`persona_ack:${name}`, `Ack as ${name}`, state.requestId)),
    });
  }
  return blocks;
}

function decisionBlocks(plan: Plan, state: RequestState): Block[] {
  if (isTerminal(state.status)) {
    const by = state.decidedBy && state.decidedBy !== 'system' ? ` by ${userRef(state.decidedBy)}` : '';
    const reason = state.reason ? `: ${state.reason}` : '';
    const icon = OUTCOME_ICON[state.status] ?? '';
    return [{ type: 'section', text: mrkdwn(`${icon} *${capitalise(state.status)}*${by}${reason}`) }];
  }
  if (state.status !== 'ready_for_approval') return [];
  const elements = [
    button('approve', 'Approve', state.requestId, 'primary'),
    button('deny', 'Deny', state.requestId, 'danger'),
    ...(plan.overrides.allowed ? [button('approve_edit', 'Approve with edits', state.requestId)] : []),
  ];
  // The block id carries the payload hash the clicker saw, so an approval of stale params is refused.
  return [{ type: 'actions', block_id: `${DECISION_BLOCK_PREFIX}${state.payloadHash}`, elements }];
}

function statusLine(state: RequestState): string {
  const parts = [`Status: *${state.status}*`, `Approvals: ${state.approvals.length} of ${state.minApprovals}`];
  if (state.approvals.length > 0)
    parts.push(`Approved by: ${state.approvals.map((a) => userRef(a.userId)).join(', ')}`);
  if (state.escalated) parts.push('⚠️ Escalated');
  if (!isTerminal(state.status)) parts.push(`Expires: ${state.expiresAt}`);
  parts.push(`Request: ${state.requestId}`);
  return parts.join(' · ');
}

function statusText(state: RequestState): string {
  const by = state.decidedBy && state.decidedBy !== 'system' ? ` by ${state.decidedBy}` : '';
  if (isTerminal(state.status)) return `${state.status}${by}`;
  return `${state.status} (${state.approvals.length} of ${state.minApprovals} approvals)`;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function renderEscalationNotice(request: CreateRequest, state: RequestState): SlackMessage {
  const text =
    `⚠️ Escalation: *${request.action}* (${state.requestId}) is still ${state.status} with ` +
    `${state.approvals.length} of ${state.minApprovals} approvals; it expires at ${state.expiresAt}.`;
  return { text, blocks: [{ type: 'section', text: mrkdwn(text) }] };
}
