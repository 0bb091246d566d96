/**
 * Cutting text for Slack without breaking it: at grapheme boundaries (never inside a surrogate pair, an emoji ZWJ
 * sequence or a letter with its combining marks), never inside an escaped entity (`&amp;`) or a `<…>` link or
 * mention, never leaving a mrkdwn code fence open, and with a visible note saying what was cut. Pure: the renderers
 * and their property tests share it.
 */

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * The length Slack's limits are checked against. Slack does not say how it counts; we count UTF-16 code units, never
 * fewer than code points or graphemes, so a text within our count is within Slack's whichever way it counts.
 */
export const slackLength = (text: string): number => text.length;

const codePoints = (text: string): number => Array.from(text).length;

/** Slack's mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting#escaping). */
export function escapeMrkdwn(text: string): string {
  return text.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

/** What a cut must keep whole: an escaped entity, a `<url|label>` link, a `<@U123>` mention. */
const ATOMIC = /&(?:amp|lt|gt);|<[^<>\n]*>/g;

/** Units a cut may fall between; a unit longer than `max` (thousands of combining marks) is split by code points. */
function units(text: string, max: number): string[] {
  const out: string[] = [];
  const graphemes = (part: string): void => {
    for (const { segment } of segmenter.segment(part)) {
      if (slackLength(segment) <= max) out.push(segment);
      else out.push(...Array.from(segment));
    }
  };
  let last = 0;
  for (const match of text.matchAll(ATOMIC)) {
    graphemes(text.slice(last, match.index));
    if (slackLength(match[0]) <= max) out.push(match[0]);
    else graphemes(match[0]);
    last = match.index + match[0].length;
  }
  graphemes(text.slice(last));
  return out;
}

const FENCE = '```';
const fenceCount = (text: string): number => text.split(FENCE).length - 1;

export interface CutOptions {
  /** Escape `&`, `<`, `>` (text from agents and policies shown as mrkdwn); lengths count the escaped text. */
  escape?: boolean;
  /** The note that ends a cut text, given how many characters (code points) were left out. */
  note?: (omitted: number) => string;
}

export interface Fitted {
  text: string;
  /** Code points of the input left out (0: the whole text is there). */
  omitted: number;
}

export const characters = (n: number): string => `${n.toLocaleString('en-US')} character${n === 1 ? '' : 's'}`;
export const defaultNote = (omitted: number): string => ` … (${characters(omitted)} more not shown)`;

const renderer = (escape: boolean | undefined) => (escape ? escapeMrkdwn : (s: string) => s);

/**
 * `raw` as it fits in `max`: whole if it does, else the longest prefix of whole units, a code fence it opened closed
 * again, and the note. The result never exceeds `max` (when `max` cannot even hold the note, the note is cut).
 */
export function fitText(raw: string, max: number, opts: CutOptions = {}): Fitted {
  const render = renderer(opts.escape);
  const whole = render(raw);
  if (slackLength(whole) <= max) return { text: whole, omitted: 0 };
  const note = opts.note ?? defaultNote;
  const total = codePoints(raw);
  // The note for the largest possible omission is at least as long as the real one: reserve that much.
  const reserve = slackLength(note(total)) + (fenceCount(raw) > 0 ? FENCE.length + 1 : 0);
  const budget = Math.max(0, max - reserve);
  const kept = takePrefix(units(raw, Math.max(1, budget)), 0, budget, render).parts.join('');
  const close = fenceCount(kept) % 2 === 1 ? `\n${FENCE}` : '';
  const omitted = total - codePoints(kept);
  const text = `${render(kept)}${close}${note(omitted)}`;
  return { text: slackLength(text) <= max ? text : hardCut(text, max), omitted };
}

interface Piece {
  raw: string;
  text: string;
}

/**
 * `raw` in pieces of at most `max` each (rendered), cut between whole units, preferring line ends; a code fence open
 * at a piece's end is closed there and opened again at the next piece's start, so each piece renders alone (one the
 * text never closed is closed at its end).
 */
function pieces(raw: string, max: number, render: (s: string) => string): Piece[] {
  if (slackLength(render(raw)) <= max && fenceCount(raw) % 2 === 0) return [{ raw, text: render(raw) }];
  const overhead = fenceCount(raw) > 0 ? 2 * (FENCE.length + 1) : 0;
  const budget = Math.max(1, max - overhead);
  const all = units(raw, budget);
  const out: Piece[] = [];
  let inFence = false;
  for (let start = 0; start < all.length;) {
    const { end, parts } = preferLineEnd(takePrefix(all, start, budget, render), start, all.length);
    const body = parts.join('');
    const opened = inFence;
    if (fenceCount(body) % 2 === 1) inFence = !inFence;
    out.push({ raw: body, text: `${opened ? `${FENCE}\n` : ''}${render(body)}${inFence ? `\n${FENCE}` : ''}` });
    start = end;
  }
  return out;
}

/** `raw` in chunks of at most `max` each (see `pieces`): all of it, for the thread. */
export function splitText(raw: string, max: number, opts: Pick<CutOptions, 'escape'> = {}): string[] {
  return pieces(raw, max, renderer(opts.escape)).map((p) => p.text);
}

export interface SectionsOptions extends CutOptions {
  /** Most characters in one chunk. */
  section: number;
  /** Most chunks. */
  sections: number;
  /** Most characters in all chunks together. */
  total: number;
}

/** `raw` in at most `sections` chunks of `section` characters and `total` in all; cut with the note if need be. */
export function fitSections(raw: string, opts: SectionsOptions): { chunks: string[]; omitted: number } {
  const render = renderer(opts.escape);
  const size = (list: Piece[]) => list.reduce((n, p) => n + slackLength(p.text), 0);
  const whole = pieces(raw, opts.section, render);
  if (whole.length <= opts.sections && size(whole) <= opts.total)
    return { chunks: whole.map((p) => p.text), omitted: 0 };
  const note = opts.note ?? defaultNote;
  const total = codePoints(raw);
  const reserve = slackLength(note(total));
  const all = units(raw, Math.max(1, opts.section - reserve));
  // The longest prefix that fits in the sections, found by shrinking: pieces break at line ends, so their count
  // is not a simple function of the length.
  let target = Math.min(opts.total, opts.sections * opts.section) - reserve;
  for (; target > 0; target = Math.floor(target * 0.95) - 1) {
    const kept = takePrefix(all, 0, target, render).parts.join('');
    const chunks = pieces(kept, opts.section - reserve, render);
    if (chunks.length > opts.sections || size(chunks) + reserve > opts.total) continue;
    const omitted = total - codePoints(kept);
    const texts = chunks.map((p) => p.text);
    texts[texts.length - 1] += note(omitted);
    return { chunks: texts, omitted };
  }
  const fitted = fitText(raw, Math.min(opts.section, opts.total), opts);
  return { chunks: [fitted.text], omitted: fitted.omitted };
}

interface Prefix {
  end: number;
  parts: string[];
}

/** The most units from `start` whose rendered length stays within `budget` (at least one when `budget` > 0). */
function takePrefix(all: string[], start: number, budget: number, render: (s: string) => string): Prefix {
  let used = 0;
  let end = start;
  while (end < all.length) {
    const size = slackLength(render(all[end] as string));
    if (used + size > budget && (end > start || budget === 0)) break;
    used += size;
    end += 1;
  }
  return { end, parts: all.slice(start, end) };
}

/** A piece that ends mid-line gives back the partial line when it holds an earlier line end in its last quarter. */
function preferLineEnd(prefix: Prefix, start: number, length: number): Prefix {
  const { parts, end } = prefix;
  const lastNewline = parts.lastIndexOf('\n');
  if (end === length || lastNewline < 0 || lastNewline < (parts.length * 3) / 4) return prefix;
  return { end: start + lastNewline + 1, parts: parts.slice(0, lastNewline + 1) };
}

/** Last resort when not even the note fits: whole code points, and no entity left half-written. */
function hardCut(text: string, max: number): string {
  let out = '';
  for (const cp of text) {
    if (slackLength(out + cp) > max) break;
    out += cp;
  }
  return out.replace(/&[a-z]{0,3}$/, '');
}
