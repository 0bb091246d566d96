/** Reading Prometheus text exposition, as a scraper sees it. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  samples: Sample[];
  /** The value of the one sample with exactly these labels; undefined when there is none. */
  get(name: string, labels?: Record<string, string>): number | undefined;
  /** Like get, 0 when absent: a counter never incremented is not exported with those labels. */
  count(name: string, labels?: Record<string, string>): number;
  /** Every sample of `name`, keyed by its labels rendered as `k=v,k=v` (sorted). */
  series(name: string): Record<string, number>;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheus(text: string): Scrape {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => c);
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  const key = (labels: Record<string, string>) =>
    Object.entries(labels)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
  const get = (name: string, labels: Record<string, string> = {}) =>
    samples.find((s) => s.name === name && key(s.labels) === key(labels))?.value;
  return {
    samples,
    get,
    count: (name, labels) => get(name, labels) ?? 0,
    series: (name) => Object.fromEntries(samples.filter((s) => s.name === name).map((s) => [key(s.labels), s.value])),
  };
}

export async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`scrape ${url}: HTTP ${res.status}`);
  return parsePrometheus(await res.text());
}
