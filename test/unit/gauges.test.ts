import {
  installVisibilityGauges,
  summarize,
  type OpenRequest,
  type OpenRequestList,
} from '../../observability/gauges.js';
import { createMetrics, type Metrics } from '../../observability/metrics.js';
import { parsePrometheus } from '../helpers/prometheus.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const open = (action: string, status: string, ageSec: number, personasPending: string[] = []): OpenRequest => ({
  action,
  status,
  personasPending,
  startedAt: new Date(NOW - ageSec * 1000),
});

describe('summarize', () => {
  test('counts per action, status and pending persona; the oldest age per action', () => {
    const s = summarize(
      [
        open('migrate', 'awaiting_personas', 30, ['DBA', 'Security']),
        open('migrate', 'awaiting_personas', 10, ['Security']),
        open('migrate', 'ready_for_approval', 90),
        open('rotate', 'ready_for_approval', 5),
      ],
      {},
      NOW,
    );
    expect(Object.fromEntries(s.pending)).toEqual({ migrate: 3, rotate: 1 });
    expect(Object.fromEntries(s.oldestAgeSec)).toEqual({ migrate: 90, rotate: 5 });
    expect(Object.fromEntries(s.byStatus.get('migrate')!)).toEqual({ awaiting_personas: 2, ready_for_approval: 1 });
    expect(Object.fromEntries(s.personaPending.get('migrate')!)).toEqual({ DBA: 1, Security: 2 });
  });

  test('known actions and their personas read 0 when nothing is open', () => {
    const s = summarize([], { migrate: ['DBA'], deploy: [] }, NOW);
    expect(Object.fromEntries(s.pending)).toEqual({ migrate: 0, deploy: 0 });
    expect(Object.fromEntries(s.oldestAgeSec)).toEqual({ migrate: 0, deploy: 0 });
    expect(Object.fromEntries(s.byStatus.get('deploy')!)).toEqual({ awaiting_personas: 0, ready_for_approval: 0 });
    expect(Object.fromEntries(s.personaPending.get('migrate')!)).toEqual({ DBA: 0 });
  });
});

describe('installVisibilityGauges', () => {
  let metrics: Metrics;
  let clock: number;
  let calls: number;
  let next: () => Promise<OpenRequestList>;

  beforeEach(() => {
    metrics = createMetrics();
    clock = NOW;
    calls = 0;
    next = async () => ({ requests: [open('migrate', 'ready_for_approval', 60)], truncated: false });
    installVisibilityGauges({
      metrics,
      cacheMs: 2000,
      now: () => clock,
      listOpen: () => {
        calls++;
        return next();
      },
    });
  });

  const scrape = async () => parsePrometheus(await metrics.registry.metrics());

  test('a burst of scrapes costs one listing; the next one after the cache window lists again', async () => {
    const [a, b] = await Promise.all([scrape(), scrape()]);
    await scrape();
    expect(calls).toBe(1);
    for (const s of [a, b]) {
      expect(s.get('pending_requests', { action: 'migrate' })).toBe(1);
      expect(s.get('open_requests_status', { action: 'migrate', status: 'ready_for_approval' })).toBe(1);
      expect(s.get('oldest_open_request_age_seconds', { action: 'migrate' })).toBe(60);
    }
    clock += 2000;
    next = async () => ({ requests: [open('rotate', 'awaiting_personas', 1, ['Security'])], truncated: false });
    const later = await scrape();
    expect(calls).toBe(2);
    // Label sets that disappeared are gone, not left at their last value.
    expect(later.series('pending_requests')).toEqual({ 'action=rotate': 1 });
    expect(later.series('persona_pending_requests')).toEqual({ 'action=rotate,persona=Security': 1 });
  });

  test('when visibility fails the gauges are empty rather than stale, and /metrics still answers', async () => {
    await scrape();
    clock += 2000;
    next = async () => {
      throw new Error('visibility unavailable');
    };
    const failed = await scrape();
    expect(failed.series('pending_requests')).toEqual({});
    expect(failed.get('process_cpu_seconds_total')).toEqual(expect.any(Number));
    clock += 2000;
    next = async () => ({ requests: [], truncated: false });
    expect((await scrape()).series('pending_requests')).toEqual({});
    expect(calls).toBe(3);
  });
});
