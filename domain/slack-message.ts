/**
 * The Slack messages of a request (SPEC section 4), rendered from the state alone so every update shows the truth.
 * Every render fits Slack's Block Kit limits (domain/slack-limits.ts) for any request the API accepts and any policy
 * `policy:check` accepts: text is cut between whole characters with a note saying what was cut, and whatever the
 * message cannot show in full (params, justification, links) is posted in full in its thread (renderThreadDetails),
 * so nobody approves what they cannot see. Text from agents and policies is escaped: it can neither mention
 * `@channel` nor forge a link.
 */
import type { Plan } from './plan.js';
import { REDACTED, redactParams } from './redaction.js';
import type { CreateRequest } from './request-schema.js';
import { isTerminal, type OverrideRecord, type RequestState } from './request-state.js';
import { LIMITS, MESSAGE_TEXT_BUDGET } from './slack-limits.js';
import { characters, escapeMrkdwn, fitSections, fitText, slackLength, splitText } from './text-cut.js';

/** Slack Block Kit objects are plain JSON; typed loosely here so this module stays free of Slack's SDK. */
export type Block = Record<string, unknown>;
export interface SlackMessage {
  text: string;
  blocks: Block[];
}

/** What the request message could not show in full; each is then posted whole in the message's thread. */
export interface Cut {
  params: boolean;
  justification: boolean;
  links: boolean;
}

export interface RequestMessage extends SlackMessage {
  cut: Cut;
}

export const DECISION_BLOCK_PREFIX = 'decide:';
export const PERSONA_ACTION_PREFIX = 'persona_ack:';
const OUTCOME_ICON: Record<string, string> = { approved: '✅', denied: '⛔', expired: '⌛', cancelled: '🚫' };

/** Persona buttons in one actions block at most; the next pending personas get theirs as these are acknowledged. */
const PERSONA_BUTTONS = LIMITS.actionsElements;
const PERSONA_BUTTON_TEXT = 40;
/** Text blocks a long justification or parameter listing may take in the message. */
const TEXT_SECTIONS = 2;
const SECTION = LIMITS.sectionText;

const plain = (text: string, max: number = LIMITS.textObject) => ({
  type: 'plain_text',
  text: fitText(text, max).text,
  emoji: true,
});
/** mrkdwn from parts that are already escaped, cut to `max` (a cut never splits an entity or leaves a fence open). */
const mrkdwn = (text: string, max: number = LIMITS.textObject) => ({ type: 'mrkdwn', text: fitText(text, max).text });
const section = (text: string, blockId?: string): Block => ({
  type: 'section',
  ...(blockId ? { block_id: blockId } : {}),
  text: mrkdwn(text, SECTION),
});
/** Sections showing the params' JSON: `params_1`, `params_2`... (readers find the code by these ids). */
export const PARAMS_BLOCK_PREFIX = 'params_';
const button = (actionId: string, text: string, value: string, style?: 'primary' | 'danger') => ({
  type: 'button',
  action_id: actionId,
  text: plain(text, LIMITS.buttonText),
  value,
  ...(style ? { style } : {}),
});

/**
 * Agent- or policy-supplied text inline in mrkdwn: escaped, cut to `max` with a note, and with its runs of three
 * backticks broken by a zero-width space so it cannot open a code block that swallows the rest of the message.
 */
const said = (raw: string, max: number, note?: (n: number) => string) =>
  fitText(inline(raw), max, { escape: true, ...(note ? { note } : {}) }).text;
const inline = (raw: string) => raw.replace(/`{3,}/g, (run) => run.split('').join('\u200b'));
/** Short agent- or policy-supplied text, escaped and defused, not cut. */
const esc = (raw: string) => escapeMrkdwn(inline(raw));

export function userRef(id: string): string {
  return /^[UW][A-Z0-9]+$/.test(id) ? `<@${id}>` : esc(id);
}

/** The request message: header, who and where, why, what, progress, buttons. */
export function renderRequestMessage(request: CreateRequest, plan: Plan, state: RequestState): RequestMessage {
  const head: Block[] = [
    { type: 'header', text: plain(`Approval requested: ${request.action}`, LIMITS.headerText) },
    { type: 'section', fields: summaryFields(request) },
    ...descriptionBlocks(plan),
  ];
  const tail: Block[] = [
    ...editBlocks(plan, state),
    ...personaBlocks(plan, state),
    ...decisionBlocks(plan, state),
    { type: 'context', elements: [mrkdwn(statusLine(state))] },
  ];
  let left = MESSAGE_TEXT_BUDGET - textOf(head) - textOf(tail);
  const justification = justificationBlocks(request, Math.min(left - 3000, TEXT_SECTIONS * SECTION));
  left -= textOf(justification.blocks);
  const links = linkBlocks(request, Math.min(left - 2000, SECTION));
  left -= textOf(links.blocks);
  const params = paramBlocks(plan, state, left);
  const cut = { params: params.cut, justification: justification.cut, links: links.cut };
  return {
    text: fitText(`${esc(request.action)}: ${statusText(state)}`, LIMITS.textObject).text,
    blocks: [...head, ...justification.blocks, ...links.blocks, ...params.blocks, ...tail],
    cut,
  };
}

/** True when the message leaves something out that its thread must carry. */
export const anythingCut = (cut: Cut): boolean => cut.params || cut.justification || cut.links;

/** Text characters of blocks, as Slack's cumulative limit counts them. */
function textOf(blocks: Block[]): number {
  let total = 0;
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (v === null || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v)) {
      if (k === 'text' && typeof x === 'string') total += slackLength(x);
      else walk(x);
    }
  };
  walk(blocks);
  return total;
}

function summaryFields(request: CreateRequest) {
  const { origin, requester } = request.meta;
  const where = [origin.repo, origin.branch && `@${origin.branch}`, origin.pr !== undefined && ` PR #${origin.pr}`]
    .filter(Boolean)
    .join('');
  const run = origin.run_id !== undefined ? ` (run ${origin.run_id})` : '';
  const who = requester.display ? esc(requester.display) : userRef(requester.id);
  return [
    mrkdwn(`*Requester*\n${fitText(who, 400).text} (${requester.source})`, LIMITS.sectionFieldText),
    mrkdwn(`*Origin*\n${said(`${where}${run}`, 1200)}`, LIMITS.sectionFieldText),
  ];
}

function descriptionBlocks(plan: Plan): Block[] {
  if (!plan.description) return [];
  return [section(`*What ${said(plan.action, 200)} does*\n${said(plan.description, 600)}`)];
}

interface Part {
  blocks: Block[];
  cut: boolean;
}

const IN_THREAD = (what: string) => (n: number) => ` … (${characters(n)} more: the full ${what} is in the thread)`;

function justificationBlocks(request: CreateRequest, budget: number): Part {
  const title = '*Justification*\n';
  const { chunks, omitted } = fitSections(request.meta.justification, {
    section: SECTION - title.length,
    sections: TEXT_SECTIONS,
    total: Math.max(300, budget) - title.length,
    escape: true,
    note: IN_THREAD('justification'),
  });
  return { blocks: chunks.map((t, i) => section(i === 0 ? `${title}${t}` : t)), cut: omitted > 0 };
}

/** meta.links as links: http(s) URLs clickable (with a short label), anything else shown as text. */
function linkBlocks(request: CreateRequest, budget: number): Part {
  const links = request.meta.links ?? [];
  if (links.length === 0) return { blocks: [], cut: false };
  let text = '*Links*';
  let shown = 0;
  for (const link of links) {
    const line = `\n• ${linkText(link)}`;
    const rest = links.length - shown - 1;
    const reserve = rest > 0 ? 60 : 0;
    if (slackLength(text) + slackLength(line) + reserve > Math.max(300, budget)) break;
    text += line;
    shown += 1;
  }
  const missing = links.length - shown;
  if (missing > 0) text += `\n… and ${missing} more link${missing === 1 ? '' : 's'}: all are in the thread`;
  return { blocks: [section(text)], cut: missing > 0 };
}

/**
 * `<url|label>` for an http(s) URL: the URL percent-encodes what would end the link early and escapes `&`; the label
 * is the URL shortened. Anything else is escaped text, never a link.
 */
export function linkText(link: string): string {
  let url: URL | null = null;
  try {
    url = new URL(link);
  } catch {
    url = null;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) return said(link, 300);
  const href = url.href.replace(/[<>|]/g, (c) => encodeURIComponent(c)).replace(/&/g, '&amp;');
  // A link line must fit one section whole: a link cut in two is no link.
  if (slackLength(href) > SECTION - 100) return said(link, 300);
  const label = fitText(`${url.host}${url.pathname === '/' ? '' : url.pathname}${url.search}`, 80, {
    escape: true,
    note: () => '…',
  }).text;
  return `<${href}|${label.replace(/\|/g, '%7C')}>`;
}

/**
 * The params as JSON, escaped for mrkdwn, with every run of three backticks broken by a JSON escape (`\u0060`): the
 * same JSON value, but it can never close the code fence it is shown in.
 */
export function paramsJson(plan: Plan, params: Record<string, unknown>): string {
  const json = JSON.stringify(redactParams(params, plan.redaction), null, 2);
  return json.replace(/```/g, '``\\u0060');
}

const fence = (code: string) => `\`\`\`${code}\`\`\``;

function paramBlocks(plan: Plan, state: RequestState, budget: number): Part {
  const json = paramsJson(plan, state.effectiveParams);
  const title = '*Parameters*\n';
  const chunks = splitText(json, SECTION - title.length - 6, { escape: true });
  const full = chunks.reduce((n, c) => n + slackLength(c) + 6, title.length);
  if (chunks.length <= TEXT_SECTIONS && full <= budget) {
    return {
      blocks: chunks.map((c, i) => section(`${i === 0 ? title : ''}${fence(c)}`, `${PARAMS_BLOCK_PREFIX}${i + 1}`)),
      cut: false,
    };
  }
  return { blocks: [section(shortenedParams(plan, state, json, Math.max(600, Math.min(budget, SECTION))))], cut: true };
}

/** Params too long for the message: said plainly, with each key and the start of its value. */
function shortenedParams(plan: Plan, state: RequestState, json: string, budget: number): string {
  const shown = redactParams(state.effectiveParams, plan.redaction);
  const keys = Object.keys(shown);
  const head =
    `*Parameters* ⚠️ *too long to show here* (${keys.length} key${keys.length === 1 ? '' : 's'}, ` +
    `${characters(Array.from(json).length)} of JSON). *Read the full parameters in this message's thread before ` +
    `deciding.* Each key with the start of its value:\n`;
  const lines: string[] = [];
  let used = slackLength(head) + 6 + 80;
  for (const key of keys) {
    const line = `${esc(JSON.stringify(key))}: ${shortValue(shown[key], 60)}`;
    if (used + slackLength(line) + 1 > budget) break;
    lines.push(line);
    used += slackLength(line) + 1;
  }
  const rest = keys.length - lines.length;
  const more = rest > 0 ? `\n… and ${rest} more key${rest === 1 ? '' : 's'}, in the thread` : '';
  return `${head}${fence(lines.join('\n') || '…')}${more}`;
}

/** A value as short JSON, escaped for mrkdwn, cut between whole characters. */
function shortValue(value: unknown, max = 80): string {
  if (value === REDACTED) return REDACTED;
  return fitText(inline(JSON.stringify(value) ?? 'null'), max, { escape: true, note: () => '…' }).text;
}

/** Who changed what (hidden values stay hidden), and whose approvals the edit voided. */
function editBlocks(plan: Plan, state: RequestState): Block[] {
  if (state.overrides.length === 0) return [];
  const side = (diff: OverrideRecord['diff'], end: 'from' | 'to') =>
    redactParams(Object.fromEntries(Object.entries(diff).map(([k, d]) => [k, d[end]])), plan.redaction);
  const lines = state.overrides.map(({ by, diff }) => {
    const from = side(diff, 'from');
    const to = side(diff, 'to');
    const changes = Object.keys(diff).map(
      (k) => `\`${said(k, 60, () => '…')}\` ${shortValue(from[k], 40)} → ${shortValue(to[k], 40)}`,
    );
    return `✏️ Edited by ${userRef(by)}: ${fitText(changes.join(', '), 600, { note: editsNote(changes.length) }).text}`;
  });
  const current = new Set(state.approvals.map((a) => a.userId));
  const voided = [...new Set(state.voidedApprovals.map((a) => a.userId))].filter((id) => !current.has(id));
  if (voided.length > 0) {
    lines.push(`Approvals given to earlier values no longer count: ${voided.map(userRef).join(', ')}`);
  }
  return [{ type: 'context', elements: [mrkdwn(lines.join('\n'), 1500)] }];
}

const editsNote = (n: number) => () => ` … (${n} keys changed in all)`;

function personaBlocks(plan: Plan, state: RequestState): Block[] {
  if (plan.personas.length === 0) return [];
  const pending = plan.personas.filter(({ name }) => !state.personaState[name]?.acked);
  const open = !isTerminal(state.status);
  const clickable = open ? pending.filter(({ name }) => personaActionId(name) !== null) : [];
  const shown = clickable.slice(0, PERSONA_BUTTONS);
  const lines = plan.personas.map(({ name }) => {
    const ack = state.personaState[name];
    const who = said(name, 100, () => '…');
    return ack?.acked ? `✅ *${who}* acknowledged by ${userRef(ack.by ?? '')}` : `⏳ *${who}* pending`;
  });
  const notes: string[] = [];
  if (clickable.length > shown.length) {
    notes.push(`${clickable.length - shown.length} more persona buttons appear as these are acknowledged.`);
  }
  const unclickable = open ? pending.length - clickable.length : 0;
  if (unclickable > 0) {
    notes.push(
      `${unclickable} persona name(s) are too long for a Slack button: acknowledge them through the admin API.`,
    );
  }
  const summary = fitText(`*Required personas*\n${lines.join('\n')}`, 1500 - 200, {
    note: (n) => `\n… (${characters(n)} more of the list not shown)`,
  }).text;
  const blocks: Block[] = [section([summary, ...notes].join('\n'))];
  if (shown.length > 0) {
    blocks.push({
      type: 'actions',
      block_id: 'personas',
      elements: shown.map(({ name }) =>
        button(personaActionId(name) as string, fitText(`Ack as ${name}`, PERSONA_BUTTON_TEXT).text, state.requestId),
      ),
    });
  }
  return blocks;
}

/** `persona_ack:<Persona>` (SPEC section 4), or null when the name makes it longer than Slack takes. */
export function personaActionId(name: string): string | null {
  const id = `${PERSONA_ACTION_PREFIX}${name}`;
  return slackLength(id) <= LIMITS.actionId ? id : null;
}

function decisionBlocks(plan: Plan, state: RequestState): Block[] {
  if (isTerminal(state.status)) return [section(outcomeLine(state))];
  if (state.status !== 'ready_for_approval') return [];
  return [decisionActions(plan, state)];
}

function decisionActions(plan: Plan, state: RequestState): Block {
  const elements = [
    button('approve', 'Approve', state.requestId, 'primary'),
    button('deny', 'Deny', state.requestId, 'danger'),
    ...(plan.overrides.allowed ? [button('approve_edit', 'Approve with edits', state.requestId)] : []),
  ];
  // The block id carries the payload hash the clicker saw, so an approval of stale params is refused.
  return { type: 'actions', block_id: `${DECISION_BLOCK_PREFIX}${state.payloadHash}`, elements };
}

function outcomeLine(state: RequestState): string {
  const by = state.decidedBy && state.decidedBy !== 'system' ? ` by ${userRef(state.decidedBy)}` : '';
  const reason = state.reason ? `: ${said(state.reason, 500)}` : '';
  const icon = OUTCOME_ICON[state.status] ?? '';
  return `${icon} *${capitalise(state.status)}*${fitText(by, 300).text}${adminMark(state)}${reason}`;
}

/** An operator's decision through the admin routes says so; one past the quorum or personas says it loudly. */
function adminMark(state: RequestState): string {
  if (state.breakGlass) return ' — 🚨 *admin break-glass* (past the quorum and personas)';
  return state.decidedVia === 'admin' ? ' (admin route)' : '';
}

function statusLine(state: RequestState): string {
  const parts = [`Status: *${state.status}*`, `Approvals: ${state.approvals.length} of ${state.minApprovals}`];
  if (state.approvals.length > 0) {
    const names = state.approvals.map((a) => userRef(a.userId)).join(', ');
    parts.push(`Approved by: ${fitText(names, 400, { note: () => ' …' }).text}`);
  }
  if (state.escalated) parts.push('⚠️ Escalated');
  if (!isTerminal(state.status)) parts.push(`Expires: ${state.expiresAt}`);
  parts.push(`Request: ${state.requestId}`);
  return parts.join(' · ');
}

function statusText(state: RequestState): string {
  const by = state.decidedBy && state.decidedBy !== 'system' ? ` by ${state.decidedBy}` : '';
  if (isTerminal(state.status)) return esc(`${state.status}${by}`);
  return `${state.status} (${state.approvals.length} of ${state.minApprovals} approvals)`;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * What is left when Slack refuses the rich message: one short line and the buttons, so the request can still be
 * decided from Slack (issue 14: a message that cannot be posted is never silent).
 */
export function renderMinimalMessage(request: CreateRequest, plan: Plan, state: RequestState): SlackMessage {
  const line =
    `*Approval requested: ${said(request.action, 150)}* by ${userRef(request.meta.requester.id)}. Slack refused ` +
    `the full message: its details (parameters, justification, links) are in this message's thread. *Read them ` +
    `before deciding.*`;
  const buttons = [...personaBlocks(plan, state).filter((b) => b.type === 'actions'), ...decisionBlocks(plan, state)];
  return {
    text: fitText(`${esc(request.action)}: ${statusText(state)}`, LIMITS.textObject).text,
    blocks: [section(line), ...buttons, { type: 'context', elements: [mrkdwn(statusLine(state))] }],
  };
}

export function renderEscalationNotice(
  request: CreateRequest,
  state: RequestState,
  permalink?: string | null,
): SlackMessage {
  const link = permalink ? ` <${permalink.replace(/[<>|]/g, encodeURIComponent)}|Open the request>` : '';
  const text =
    `⚠️ Escalation: *${said(request.action, 200)}* (${state.requestId}) is still ${state.status} with ` +
    `${state.approvals.length} of ${state.minApprovals} approvals; it expires at ${state.expiresAt}.${link}`;
  return { text, blocks: [section(text)] };
}

/** A private notice (a refused click): escaped, short enough for any surface. */
export function renderNotice(text: string): { text: string } {
  return { text: fitText(text, LIMITS.textObject, { escape: true }).text };
}

/**
 * The thread messages that carry in full what the request message cut: the params (redacted as configured), in as
 * many code blocks and messages as needed, and the justification and links when those were cut too.
 */
export function renderThreadDetails(request: CreateRequest, plan: Plan, state: RequestState, cut: Cut): SlackMessage[] {
  const blocks: Block[] = [];
  if (cut.params) {
    const code = splitText(paramsJson(plan, state.effectiveParams), SECTION - 6, { escape: true });
    const parts = code.length === 1 ? '' : ` in ${code.length} parts`;
    blocks.push(
      section(
        `*Full parameters* of *${said(request.action, 200)}* (${state.requestId}, payload ` +
          `\`${state.payloadHash}\`)${parts}, as the approval will run them:`,
      ),
      ...code.map((c, i) => section(fence(c), `${PARAMS_BLOCK_PREFIX}${i + 1}`)),
    );
  }
  if (cut.justification) {
    const text = splitText(request.meta.justification, SECTION, { escape: true });
    blocks.push(section('*Full justification*'), ...text.map((t) => section(t)));
  }
  if (cut.links && (request.meta.links ?? []).length > 0) {
    const lines = (request.meta.links ?? []).map((l) => `• ${linkText(l)}`).join('\n');
    blocks.push(section('*All links*'), ...splitText(lines, SECTION).map((t) => section(t)));
  }
  return packMessages(blocks, `Details of ${esc(request.action)} (${state.requestId})`);
}

/** Blocks in as few messages as Slack takes: at most 50 blocks and the text budget each. */
function packMessages(blocks: Block[], text: string): SlackMessage[] {
  const messages: SlackMessage[] = [];
  let current: Block[] = [];
  let used = 0;
  for (const block of blocks) {
    const size = textOf([block]);
    if (current.length > 0 && (current.length >= LIMITS.messageBlocks || used + size > MESSAGE_TEXT_BUDGET)) {
      messages.push({ text: fitText(text, LIMITS.textObject).text, blocks: current });
      current = [];
      used = 0;
    }
    current.push(block);
    used += size;
  }
  if (current.length > 0) messages.push({ text: fitText(text, LIMITS.textObject).text, blocks: current });
  return messages;
}
