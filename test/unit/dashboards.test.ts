/**
 * The Grafana dashboard and the Prometheus alert rules may only query what the service exports: every metric name
 * (histograms with their _bucket/_sum/_count series) and every label must be registered by observability/metrics.ts.
 * Prometheus's own promtool (Debian's `prometheus` package; .ci/run installs it) parses every expression, runs the
 * alert unit tests of test/promtool/ and lints the exported metrics. promtool has no command that lists an
 * expression's selectors, so the small reader below still finds the metric and label names to check.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { parse, stringify } from 'yaml';
import { createMetrics } from '../../observability/metrics.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' ? (v as Json) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Labels Prometheus itself attaches to every scraped series. */
const TARGET_LABELS = ['job', 'instance'];

interface Exported {
  type: string;
  labels: Set<string>;
}

async function exportedSeries(): Promise<Map<string, Exported>> {
  const registry = new Registry();
  createMetrics(registry);
  const series = new Map<string, Exported>();
  for (const m of await registry.getMetricsAsJSON()) {
    const labelNames = (registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] }).labelNames ?? [];
    const labels = new Set([...labelNames, ...TARGET_LABELS]);
    series.set(m.name, { type: String(m.type), labels });
    if (String(m.type) === 'histogram') {
      series.set(`${m.name}_bucket`, { type: 'counter', labels: new Set([...labels, 'le']) });
      series.set(`${m.name}_sum`, { type: 'counter', labels });
      series.set(`${m.name}_count`, { type: 'counter', labels });
    }
  }
  return series;
}

// ---------------------------------------------------------------------------------------------------------------
// A PromQL reader sufficient to find selectors: a lexer plus a walk over its tokens.

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'atan2',
]);
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

interface Selector {
  metric: string;
  labels: string[];
}

interface Query {
  selectors: Selector[];
  /** Labels named in by/without/on/ignoring/group_* clauses. */
  grouping: string[];
  /** Grafana variables used, `$name` or `${name}`. */
  variables: string[];
}

type Token = { kind: 'ident' | 'string' | 'number' | 'punct'; text: string };

function lex(expr: string): Token[] {
  const tokens: Token[] = [];
  const re =
    /\s+|#[^\n]*|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)|(\d+(?:\.\d+)?(?:e[+-]?\d+)?[a-zA-Z]*)|([a-zA-Z_:][\w:]*)|(\[[^\]]*\])|(=~|!~|!=|==|<=|>=|[(){},=<>+\-*/%^])/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < expr.length && (m = re.exec(expr))) {
    if (m[1]) tokens.push({ kind: 'string', text: m[1] });
    else if (m[2]) tokens.push({ kind: 'number', text: m[2] });
    else if (m[3]) tokens.push({ kind: 'ident', text: m[3] });
    else if (m[4])
      continue; // range or subquery: durations only
    else if (m[5]) tokens.push({ kind: 'punct', text: m[5] });
  }
  // Not a syntax check (promtool does that below): only what this reader cannot walk.
  if (re.lastIndex < expr.length) throw new Error(`cannot read PromQL at ${JSON.stringify(expr.slice(re.lastIndex))}`);
  return tokens;
}

function readQuery(rawExpr: string): Query {
  const variables = [...rawExpr.matchAll(/\$\{?(\w+)\}?/g)].map((m) => m[1]!);
  // Grafana variables stand for label values (inside strings) or durations (inside brackets): neither matters here.
  const tokens = lex(rawExpr.replace(/\$\{?\w+\}?/g, 'x'));
  const selectors: Selector[] = [];
  const grouping: string[] = [];
  const labelList = (i: number): [string[], number] => {
    const names: string[] = [];
    let j = i + 1;
    for (; j < tokens.length && tokens[j]!.text !== ')'; j++)
      if (tokens[j]!.kind === 'ident') names.push(tokens[j]!.text);
    return [names, j];
  };
  const matcherLabels = (i: number): [string[], number] => {
    const names: string[] = [];
    let j = i + 1;
    for (; j < tokens.length && tokens[j]!.text !== '}'; j++) {
      if (tokens[j]!.kind === 'ident' && /^(=~|!~|!=|=)$/.test(tokens[j + 1]?.text ?? '')) names.push(tokens[j]!.text);
    }
    return [names, j];
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const next = tokens[i + 1]?.text;
    if (t.kind !== 'ident' && t.text !== '{') continue;
    if (t.text === '{') {
      // A selector without a metric name (`{__name__=...}`) would escape the name check.
      throw new Error(`selector without a metric name in ${rawExpr}`);
    }
    if (GROUPING.has(t.text) && next === '(') {
      const [names, end] = labelList(i + 1);
      grouping.push(...names);
      i = end;
    } else if (KEYWORDS.has(t.text) || next === '(' || GROUPING.has(next ?? '')) {
      continue; // operator, or a function / aggregation name (`sum by (x) (...)`)
    } else if (next === '{') {
      const [labels, end] = matcherLabels(i + 1);
      selectors.push({ metric: t.text, labels });
      i = end;
    } else {
      selectors.push({ metric: t.text, labels: [] });
    }
  }
  return { selectors, grouping, variables };
}

function problems(expr: string, series: Map<string, Exported>): string[] {
  const q = readQuery(expr);
  const out: string[] = [];
  if (q.selectors.length === 0) out.push('queries no metric');
  const known = new Set<string>();
  for (const s of q.selectors) {
    const exported = series.get(s.metric);
    if (!exported) {
      out.push(`unknown metric ${s.metric}`);
      continue;
    }
    exported.labels.forEach((l) => known.add(l));
    for (const l of s.labels) if (!exported.labels.has(l)) out.push(`${s.metric} has no label ${l}`);
  }
  for (const l of q.grouping) if (known.size && !known.has(l)) out.push(`grouping by unknown label ${l}`);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

const dashboard = JSON.parse(read('observability/grafana-dashboard.json')) as Json;
const panels = arr(dashboard.panels).map(obj);
const queryPanels = panels.filter((p) => p.type !== 'row');
const targets: (Json & { panel: string })[] = queryPanels.flatMap((p) =>
  arr(p.targets).map((t) => ({ ...obj(t), panel: String(p.title) })),
);
const exprs = targets.map((t) => String(t.expr));

const rules = obj(parse(read('observability/alerts.yml')));
const groups = arr(rules.groups).map(obj);
const alerts = groups.flatMap((g) => arr(g.rules).map(obj));
const alert = (name: string) => alerts.find((a) => a.alert === name);

let series: Map<string, Exported>;
beforeAll(async () => {
  series = await exportedSeries();
});

describe('the PromQL reader used below', () => {
  test.each([
    [
      'sum by (le, outcome) (rate(decision_latency_seconds_bucket{action=~"$action"}[$__rate_interval]))',
      ['decision_latency_seconds_bucket'],
      ['le', 'outcome'],
    ],
    ['sum without (a) (x_total) / on (b) count by (c) (y_total)', ['x_total', 'y_total'], ['a', 'b', 'c']],
    ['a_total / ignoring(x) group_left(y) b_total offset 1h > bool 3', ['a_total', 'b_total'], ['x', 'y']],
    ['max(c{job=~"$job", k!="v"}) without (instance) unless on() d', ['c', 'd'], ['instance']],
    ['histogram_quantile(0.95, sum(rate(h_bucket[5m])) by (le)) > 1e3', ['h_bucket'], ['le']],
  ])('%s', (expr, metrics, grouping) => {
    const q = readQuery(expr);
    expect(q.selectors.map((s) => s.metric)).toEqual(metrics);
    expect(q.grouping).toEqual(grouping);
  });

  test('finds unknown metrics, histogram suffixes of non-histograms and unknown labels', () => {
    expect(problems('rate(approvals_total[5m])', series)).toEqual([]);
    expect(problems('rate(approval_total[5m])', series)).toEqual(['unknown metric approval_total']);
    expect(problems('rate(approvals_total_count[5m])', series)).toEqual(['unknown metric approvals_total_count']);
    expect(problems('sum by (le) (rate(decision_latency_seconds_bucket{persona="x"}[5m]))', series)).toEqual([
      'decision_latency_seconds_bucket has no label persona',
    ]);
    expect(problems('sum by (reason) (rate(approvals_total[5m]))', series)).toEqual([
      'grouping by unknown label reason',
    ]);
    expect(() => readQuery('{__name__="approvals_total"}')).toThrow(/without a metric name/);
  });
});

describe('Grafana dashboard (observability/grafana-dashboard.json)', () => {
  test('is an importable dashboard with a Prometheus datasource input', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toBe('approval-guard');
    expect(arr(dashboard.__inputs)).toContainEqual(
      expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }),
    );
    const ds = { type: 'prometheus', uid: '${DS_PROMETHEUS}' };
    for (const p of queryPanels) expect([p.title, p.datasource]).toEqual([p.title, ds]);
    for (const t of targets) expect([t.panel, t.datasource]).toEqual([t.panel, ds]);
    expect(targets.length).toBeGreaterThan(0);
  });

  test('panels have unique ids, fit the 24-column grid and do not overlap', () => {
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const boxes = panels.map((p) => ({
      title: String(p.title),
      ...(obj(p.gridPos) as { x: number; y: number; w: number; h: number }),
    }));
    for (const b of boxes) expect([b.title, b.x >= 0 && b.w > 0 && b.x + b.w <= 24]).toEqual([b.title, true]);
    for (const [i, a] of boxes.entries()) {
      for (const b of boxes.slice(i + 1)) {
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect([a.title, b.title, overlap]).toEqual([a.title, b.title, false]);
      }
    }
  });

  test('every query names only exported metrics and labels', () => {
    const found = targets.map((t) => ({ panel: t.panel, expr: t.expr, problems: problems(String(t.expr), series) }));
    expect(found.filter((f) => f.problems.length)).toEqual([]);
  });

  test('every variable a query uses is defined by the dashboard or built into Grafana', () => {
    const defined = new Set(arr(obj(dashboard.templating).list).map((v) => String(obj(v).name)));
    const used = new Set(exprs.flatMap((e) => readQuery(e).variables));
    expect([...used].filter((v) => !v.startsWith('__') && !defined.has(v))).toEqual([]);
    for (const v of arr(obj(dashboard.templating).list).map(obj)) {
      if (v.type === 'query')
        expect(problems(String(obj(v.query).query).replace(/^label_values\((.*), \w+\)$/, '$1'), series)).toEqual([]);
    }
  });

  test('shows every metric of SPEC section 6', async () => {
    const registry = new Registry();
    const metrics = createMetrics(registry);
    const own = Object.values(metrics)
      .filter((m): m is Exclude<typeof m, Registry> => !(m instanceof Registry))
      .map((m) => (m as unknown as { name: string }).name);
    expect(own.length).toBeGreaterThan(15);
    const queried = new Set(
      exprs.flatMap((e) => readQuery(e).selectors.map((s) => s.metric.replace(/_(bucket|sum|count)$/, ''))),
    );
    expect(own.filter((n) => !queried.has(n))).toEqual([]);
  });

  test('has the panels of runbook section 14', () => {
    const uses = (re: RegExp) => exprs.some((e) => re.test(e));
    for (const m of ['approval_requests_total', 'approvals_total', 'denies_total', 'expired_total']) {
      expect([m, uses(new RegExp(`rate\\(${m}\\{`))]).toEqual([m, true]);
    }
    for (const q of ['0.5', '0.95', '0.99']) {
      const re = new RegExp(
        `histogram_quantile\\(${q.replace('.', '\\.')}, sum by \\(le, outcome\\) \\(rate\\(decision_latency_seconds_bucket`,
      );
      expect([q, uses(re)]).toEqual([q, true]);
    }
    for (const m of [
      'pending_requests',
      'oldest_open_request_age_seconds',
      'persona_pending_requests',
      'param_overrides_total',
      'override_rejections_total',
      'escalations_total',
      'archived_requests_total',
      'purged_requests_total',
      'request_archive_failures_total',
      'slack_update_queue_depth',
      'security_events_total',
    ]) {
      expect([m, uses(new RegExp(`\\b${m}\\b`))]).toEqual([m, true]);
    }
    expect(uses(/sum by \(outcome\) \(rate\(slack_api_calls_total/)).toBe(true);
    // Request rate, error ratio and latency per route (issue 18).
    expect(uses(/sum by \(route\) \(rate\(http_requests_total\{[^}]*\}\[/)).toBe(true);
    expect(uses(/sum by \(route\) \(rate\(http_requests_total\{[^}]*status=~"5\.\."\}/)).toBe(true);
    expect(uses(/histogram_quantile\(0\.95, sum by \(le, route\) \(rate\(http_request_duration_seconds_bucket/)).toBe(
      true,
    );
  });
});

describe('Prometheus alert rules (observability/alerts.yml)', () => {
  test('are rule groups of uniquely named alerts with severity, summary, description and runbook section', () => {
    expect(groups.length).toBeGreaterThan(0);
    const names = alerts.map((a) => a.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const g of groups) expect(typeof g.name).toBe('string');
    for (const a of alerts) {
      const name = String(a.alert);
      expect([name, typeof a.expr]).toEqual([name, 'string']);
      if (a.for !== undefined) expect([name, a.for]).toEqual([name, expect.stringMatching(/^\d+[smhd]$/)]);
      expect([name, obj(a.labels).severity]).toEqual([name, expect.stringMatching(/^(critical|warning|info)$/)]);
      const ann = obj(a.annotations);
      expect([name, typeof ann.summary, typeof ann.description]).toEqual([name, 'string', 'string']);
      expect([name, ann.runbook]).toEqual([name, expect.stringMatching(/runbook section 13 \(/)]);
    }
  });

  test('every expression names only exported metrics and labels', () => {
    const found = alerts.map((a) => ({ alert: a.alert, problems: problems(String(a.expr), series) }));
    expect(found.filter((f) => f.problems.length)).toEqual([]);
  });

  test('cover the alerts of runbook section 13', () => {
    const latency = alert('GuardHighApprovalLatency');
    expect(latency?.for).toBe('5m');
    expect(String(latency?.expr)).toMatch(
      /histogram_quantile\(0\.95,\s*sum by \(le, action\) \(rate\(decision_latency_seconds_bucket/,
    );
    expect(String(alert('GuardEscalationSurge')?.expr)).toContain('escalations_total');
    expect(String(alert('GuardSlackApiErrors')?.expr)).toContain('slack_api_calls_total{outcome="error"}');
    expect(String(alert('GuardSignatureAnomaly')?.expr)).toContain('security_events_total');
    expect(String(alert('GuardHttp5xxErrors')?.expr)).toMatch(
      /sum by \(route\) \(rate\(http_requests_total\{status=~"5\.\."\}\[5m\]\)\)\s*\/ sum by \(route\) \(rate\(http_requests_total\[5m\]\)\) > 0\.05/,
    );
    expect(String(alert('GuardArchiveFailures')?.expr)).toMatch(
      /increase\(request_archive_failures_total\[15m\]\)\) > 0$/,
    );
  });

  test('annotation templates use only labels the expression keeps', () => {
    for (const a of alerts) {
      const q = readQuery(String(a.expr));
      const used = [...JSON.stringify(a.annotations).matchAll(/\$labels\.(\w+)/g)].map((m) => m[1]!);
      for (const l of used) expect([a.alert, l, q.grouping.includes(l)]).toEqual([a.alert, l, true]);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// promtool

const PROMTOOL_MISSING =
  "promtool is not installed: it comes with Debian's prometheus package (apt-get install prometheus; .ci/run does)";

interface Run {
  status: number | null;
  out: string;
}

function promtool(args: string[]): Run {
  const res = spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8' });
  if ((res.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw new Error(PROMTOOL_MISSING);
  return { status: res.status, out: `${res.stdout}${res.stderr}` };
}

const execFileP = promisify(execFile);
async function promtoolAsync(args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileP('promtool', args, { cwd: ROOT });
    return { status: 0, out: `${stdout}${stderr}` };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { code?: unknown; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error(PROMTOOL_MISSING);
    return { status: typeof e.code === 'number' ? e.code : null, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const TEST_FILES = ['test/promtool/alerts.test.yml', 'test/promtool/escalations.test.yml'];
interface AlertCase {
  alertname: string;
  exp_alerts?: unknown[];
}
interface TestGroup {
  name: string;
  alert_rule_test?: AlertCase[];
}
const testFiles = TEST_FILES.map((file) => ({ file, doc: obj(parse(read(file))) }));
const casesOf = (name: string) =>
  testFiles.flatMap(({ doc }) =>
    (arr(doc.tests) as TestGroup[]).flatMap((g) => (g.alert_rule_test ?? []).filter((c) => c.alertname === name)),
  );

/** Grafana's variables as a Prometheus would see them once Grafana has filled them in. */
const asPromql = (expr: string) =>
  expr.replace(/\$(__rate_interval|__interval|__range|latency_window)\b/g, '5m').replace(/\$\{?(job|action)\}?/g, '.*');

describe('promtool', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'guard-promtool-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('is installed (a test that needs it fails rather than skips)', () => {
    const res = promtool(['--version']);
    expect([res.status, res.out]).toEqual([0, expect.stringMatching(/^promtool, version \d+\.\d+/)]);
  });

  test('check rules accepts the alert rules', () => {
    const res = promtool(['check', 'rules', '--lint=all', '--lint-fatal', 'observability/alerts.yml']);
    expect([res.status, res.out]).toEqual([0, expect.stringContaining(`SUCCESS: ${alerts.length} rules found`)]);
  });

  test('test rules passes the alert unit tests of test/promtool', () => {
    const res = promtool(['test', 'rules', ...TEST_FILES]);
    expect([res.status, res.out]).toEqual([0, expect.not.stringContaining('FAILED')]);
    expect(res.out.match(/SUCCESS/g)).toHaveLength(TEST_FILES.length);
  });

  test('every alert has a case where it fires and a case where it stays quiet', () => {
    const coverage = alerts.map((a) => {
      const cases = casesOf(String(a.alert));
      return {
        alert: a.alert,
        fires: cases.some((c) => arr(c.exp_alerts).length > 0),
        quiet: cases.some((c) => arr(c.exp_alerts).length === 0),
      };
    });
    expect(coverage.filter((c) => !c.fires || !c.quiet)).toEqual([]);
  });

  // Each alert broken on purpose, two ways, against only its own cases: silenced, its firing cases must fail;
  // always firing, its quiet cases must fail. A case that passes either way could not catch a broken rule.
  test('the unit tests fail when a rule is broken on purpose', async () => {
    const rulesText = read('observability/alerts.yml');
    const runs = alerts.flatMap((a) =>
      (['silenced', 'always'] as const).map(async (how) => {
        const name = String(a.alert);
        const broken = obj(parse(rulesText));
        for (const g of arr(broken.groups).map(obj))
          for (const r of arr(g.rules).map(obj))
            if (r.alert === name) r.expr = how === 'silenced' ? 'vector(1) < 0' : 'vector(1)';
        const base = path.join(dir, `${name}-${how}`);
        writeFileSync(`${base}.rules.yml`, stringify(broken));
        const files = testFiles.map(({ doc }, i) => {
          const tests = (arr(doc.tests) as TestGroup[])
            .map((g) => ({
              ...g,
              alert_rule_test: (g.alert_rule_test ?? []).filter(
                (c) => c.alertname === name && arr(c.exp_alerts).length > 0 === (how === 'silenced'),
              ),
            }))
            .filter((g) => g.alert_rule_test.length > 0);
          const file = `${base}.${i}.test.yml`;
          writeFileSync(file, stringify({ ...doc, rule_files: [`${base}.rules.yml`], tests }));
          return tests.length ? file : null;
        });
        const res = await promtoolAsync(['test', 'rules', ...files.filter((f): f is string => f !== null)]);
        return { alert: name, how, failed: res.status !== 0 && res.out.includes(`alertname: ${name}`) };
      }),
    );
    const results = await Promise.all(runs);
    expect(results.length).toBe(alerts.length * 2);
    expect(results.filter((r) => !r.failed)).toEqual([]);
  });

  test('check rules parses every dashboard query (Grafana variables filled in) and refuses a broken one', () => {
    const variableQueries = arr(obj(dashboard.templating).list)
      .map(obj)
      .filter((v) => v.type === 'query')
      .map((v) => String(obj(v.query).query).replace(/^label_values\((.*), \w+\)$/, '$1'));
    const queries = [...exprs, ...variableQueries].map(asPromql);
    const ruleFile = (list: string[]) => {
      const file = path.join(dir, `dashboard-${list.length}.rules.yml`);
      const rules = list.map((expr, i) => ({ record: `dashboard:query_${i}`, expr }));
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
      return file;
    };
    const res = promtool(['check', 'rules', '--lint=none', ruleFile(queries)]);
    expect([res.status, res.out]).toEqual([0, expect.stringContaining(`SUCCESS: ${queries.length} rules found`)]);
    const broken = promtool(['check', 'rules', '--lint=none', ruleFile([queries[0]!.replace('(', '(sum by (le) ')])]);
    expect([broken.status, broken.out]).toEqual([1, expect.stringMatching(/FAILED|parse error/)]);
  });

  test("check metrics finds nothing to lint in what the service exports, but for prom-client's defaults", async () => {
    const registry = new Registry();
    const metrics = createMetrics(registry);
    metrics.httpRequests.inc({ method: 'GET', route: '/healthz', status: '200' });
    metrics.httpDuration.observe({ method: 'GET', route: '/healthz' }, 0.01);
    metrics.decisionLatency.observe({ action: 'a', outcome: 'approved' }, 3);
    const res = spawnSync('promtool', ['check', 'metrics'], { input: await registry.metrics(), encoding: 'utf8' });
    if ((res.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw new Error(PROMTOOL_MISSING);
    const problems = `${res.stdout}${res.stderr}`.trim().split('\n').filter(Boolean);
    // collectDefaultMetrics's gauges of handles, requests and resources end in _total: theirs, not ours to rename.
    expect(problems.sort()).toEqual(
      ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'].map(
        (n) => `${n} non-counter metrics should not have "_total" suffix`,
      ),
    );
  });
});
