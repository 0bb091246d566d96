/** Cutting text for Slack (domain/text-cut.ts): whole characters, closed fences, whole entities, a visible note. */
import fc from 'fast-check';
import { escapeMrkdwn, fitSections, fitText, slackLength, splitText } from '../../domain/text-cut.js';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const fences = (s: string) => s.split('```').length - 1;
const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

describe('fitText', () => {
  test('a text that fits is returned whole, escaped when asked', () => {
    expect(fitText('a < b & c', 100)).toEqual({ text: 'a < b & c', omitted: 0 });
    expect(fitText('a < b & c', 100, { escape: true })).toEqual({ text: 'a &lt; b &amp; c', omitted: 0 });
  });

  test('a cut ends with a note saying how much was left out', () => {
    const { text, omitted } = fitText('x'.repeat(5000), 3000);
    expect(slackLength(text)).toBeLessThanOrEqual(3000);
    expect(text).toMatch(/ … \(2,\d{3} characters more not shown\)$/);
    expect(omitted).toBe(5000 - text.indexOf(' …'));
  });

  test.each([
    ['emoji (surrogate pairs)', '😀'],
    ['a family ZWJ sequence', '👨‍👩‍👧‍👦'],
    ['a flag', '🇫🇷'],
    ['CJK', '漢'],
    ['a letter with combining marks', 'é̃'],
  ])('never cuts inside %s', (_name, unit) => {
    for (const max of [50, 51, 52, 53, 97, 98, 99]) {
      const { text } = fitText(unit.repeat(200), max, { note: () => '…' });
      expect(slackLength(text)).toBeLessThanOrEqual(max);
      const kept = text.slice(0, -1);
      expect(kept.replaceAll(unit, '')).toBe('');
    }
  });

  test('a code fence the kept part opened is closed before the note', () => {
    const raw = `see:\n\`\`\`\n${'line of code\n'.repeat(400)}\`\`\`\nafter`;
    const { text } = fitText(raw, 1000);
    expect(fences(text) % 2).toBe(0);
    expect(text).toMatch(/\n```.* more not shown\)$/s);
  });

  test('escaped entities, links and mentions are never split', () => {
    for (let max = 40; max < 70; max++) {
      const escaped = fitText('&'.repeat(100), max, { escape: true, note: () => '' }).text;
      expect(escaped).toMatch(/^(&amp;)*$/);
      const built = fitText(`${'<@U0ALICE> <https://x.example/a|a> '.repeat(10)}`, max, { note: () => '' }).text;
      expect(built.replace(/<@U0ALICE>|<https:\/\/x\.example\/a\|a>| /g, '')).toBe('');
    }
  });

  test('property: never over the limit, never a lone surrogate, fences balanced when the input had them balanced', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 600 }),
        fc.integer({ min: 20, max: 400 }),
        fc.boolean(),
        (raw, max, escape) => {
          const { text, omitted } = fitText(raw, max, { escape });
          expect(slackLength(text)).toBeLessThanOrEqual(max);
          if (!LONE_SURROGATE.test(raw)) expect(LONE_SURROGATE.test(text)).toBe(false);
          if (fences(raw) % 2 === 0) expect(fences(text) % 2).toBe(0);
          if (omitted === 0) expect(escape ? unescape(text) : text).toBe(raw);
        },
      ),
    );
  });
});

describe('splitText and fitSections', () => {
  test('chunks fit, keep every character in order, and each renders a fence of its own', () => {
    const raw = `intro\n\`\`\`\n${'const x = "<&>";\n'.repeat(300)}\`\`\`\nend`;
    const chunks = splitText(raw, 1000, { escape: true });
    expect(chunks.length).toBeGreaterThan(4);
    for (const c of chunks) {
      expect(slackLength(c)).toBeLessThanOrEqual(1000);
      expect(fences(c) % 2).toBe(0);
    }
    // Undo what splitting added: a fence closed at a chunk's end and opened again at the next one's start.
    const rejoined = chunks
      .map((c, i) => {
        const reopened = i > 0 && c.startsWith('```\n') && chunks[i - 1]!.endsWith('\n```');
        const closed = i < chunks.length - 1 && c.endsWith('\n```') && chunks[i + 1]!.startsWith('```\n');
        return c.slice(reopened ? 4 : 0, closed ? -4 : undefined);
      })
      .join('');
    expect(unescape(rejoined)).toBe(raw);
  });

  test('property: splitting loses nothing (text without fences)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 3000 }), fc.integer({ min: 10, max: 500 }), (raw, max) => {
        fc.pre(!raw.includes('```'));
        const chunks = splitText(raw, max, { escape: true });
        for (const c of chunks) expect(slackLength(c)).toBeLessThanOrEqual(max);
        expect(unescape(chunks.join(''))).toBe(raw);
      }),
    );
  });

  test('fitSections keeps what fits in so many sections and notes the rest', () => {
    const raw = '漢字'.repeat(3000);
    const { chunks, omitted } = fitSections(raw, { section: 2984, sections: 2, total: 4000, note: (n) => ` [+${n}]` });
    expect(chunks).toHaveLength(2);
    expect(chunks.reduce((n, c) => n + slackLength(c), 0)).toBeLessThanOrEqual(4000);
    expect(chunks[1]).toMatch(new RegExp(` \\[\\+${omitted}\\]$`));
    expect(chunks.join('').replace(/ \[\+\d+\]$/, '')).toBe(raw.slice(0, raw.length - omitted));
  });

  test('escapeMrkdwn escapes exactly &, < and >', () => {
    expect(escapeMrkdwn('<!channel> & <https://evil|click> *bold* `code`')).toBe(
      '&lt;!channel&gt; &amp; &lt;https://evil|click&gt; *bold* `code`',
    );
  });
});

test('a fence the text opened and a cut left open is closed, in every section', () => {
  const raw = `look:\n\`\`\`\n${'漢字 code\n'.repeat(800)}`;
  const { chunks } = fitSections(raw, { section: 2900, sections: 2, total: 5000 });
  expect(chunks).toHaveLength(2);
  for (const c of chunks) expect(c.split('```').length % 2).toBe(1);
});
