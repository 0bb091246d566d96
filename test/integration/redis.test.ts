/**
 * Two API replicas sharing one real Redis (Debian's redis-server, started here on a free port): the rate limiter's
 * counters and the Slack replay cache are shared, and a Redis outage neither crashes nor opens the API.
 */
import { eventually } from '../helpers/eventually.js';
import { Redis } from 'ioredis';
import type { ApiServer } from '../../service/api-server.js';
import { createMetrics, type Metrics } from '../../observability/metrics.js';
import { blockActionPayload, formBody, signSlackRequest, INTERACTIONS_PATH } from '../helpers/slack.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startApi } from './fixtures.js';
import { fetchJson, requestBody, SIGNING_SECRET, startHarness, type Harness } from './harness.js';

const CAPACITY = 4;
const AGENTS = ['limit-bot', 'outage-bot', 'other-bot'] as const;
const keyOf = (agent: string) => `${agent}-key-0123456789`;
const bearer = (agent: string) => ({ authorization: `Bearer ${keyOf(agent)}` });

let redis: RedisServer;
let h: Harness;
let second: ApiServer;
const secondMetrics: Metrics = createMetrics();
let inspect: Redis;

beforeAll(async () => {
  redis = await startRedis(undefined, 'SIGTERM');
  const env = {
    REDIS_URL: redis.url,
    RATE_LIMIT_CAPACITY: String(CAPACITY),
    RATE_LIMIT_REFILL_PER_SEC: '0.1',
    AGENT_API_KEYS: AGENTS.map((a) => `${a}:${keyOf(a)}`).join(','),
  };
  h = await startHarness({ env });
  // The second replica: same configuration and task queue, its own process state.
  second = await startApi(h.config, secondMetrics);
  inspect = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  inspect.on('error', () => undefined);
}, 60_000);

afterAll(async () => {
  inspect?.disconnect();
  await second?.close();
  await h?.close();
  await redis?.stop();
});

/** Slack acks may be empty: those bodies stay strings. */
const post = (base: string, path: string, body: string | object, headers: Record<string, string>) =>
  fetchJson(base, 'POST', path, body, headers);

const create = (base: string, agent: string) => post(base, '/api/guard/request', requestBody('simple'), bearer(agent));

/** An approval of the params the request was created with (its decision block carries their hash). */
function signedClick(created: { requestId: string; payloadHash: string }) {
  const { requestId } = created;
  const blockId = `decide:${created.payloadHash}`;
  const raw = formBody(blockActionPayload({ actionId: 'approve', value: requestId, userId: 'U_ALICE', blockId }));
  const sent = { actionId: 'approve', requestId, userId: 'U_ALICE', channelId: 'C0FAKECHAN', sentAt: Date.now() };
  return { raw, headers: { ...signSlackRequest(SIGNING_SECRET, raw) }, sent };
}

async function securityEvents(metrics: Metrics, type: string): Promise<number> {
  const { values } = await metrics.securityEvents.get();
  return values.find((v) => v.labels.type === type)?.value ?? 0;
}

test('the limiter is shared: an agent’s capacity is consumed across both replicas', async () => {
  const answers = [];
  for (let i = 0; i < CAPACITY; i++) answers.push(await create(i % 2 === 0 ? h.url : second.url, 'limit-bot'));
  expect(answers.map((a) => a.status)).toEqual(Array(CAPACITY).fill(200));
  // Each replica alone saw only half the capacity: only a shared counter refuses here.
  const refusedFirst = await create(h.url, 'limit-bot');
  const refusedSecond = await create(second.url, 'limit-bot');
  for (const refused of [refusedFirst, refusedSecond]) {
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ error: 'rate_limited' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  }
  expect(await securityEvents(secondMetrics, 'rate_limited')).toBe(1);
  // The counter lives in Redis under the agent's key.
  expect(Number(await inspect.get('guard:ratelimit:agent:limit-bot'))).toBe(CAPACITY + 2);
  // Another agent is unaffected.
  expect((await create(second.url, 'other-bot')).status).toBe(200);
});

test('a Slack payload replayed to the second replica is refused with 400 replay_detected', async () => {
  const created = await create(h.url, 'other-bot');
  expect(created.status).toBe(200);
  const { raw, headers, sent } = signedClick(created.body);
  const first = await post(h.url, INTERACTIONS_PATH, raw, headers);
  expect(first.status).toBe(200);
  expect(first.body).toMatchObject({ ok: true, status: 'received' });
  expect(await h.outcomeOf(first, sent)).toMatchObject({ ok: true, status: 'approved' });
  const before = await securityEvents(secondMetrics, 'replay');
  const replayed = await post(second.url, INTERACTIONS_PATH, raw, headers);
  expect(replayed).toMatchObject({ status: 400, body: { error: 'replay_detected' } });
  expect(await securityEvents(secondMetrics, 'replay')).toBe(before + 1);
  // Remembered for the 5-minute validity window of a signature.
  const ttl = await inspect.ttl(`guard:replay:slack-sig:${headers['x-slack-signature']}`);
  expect(ttl).toBeGreaterThan(250);
  expect(ttl).toBeLessThanOrEqual(300);
});

test('Redis down: limits are skipped, Slack deliveries answer 503 (never unchecked); all recovers by itself', async () => {
  await redis.stop();
  // The limiter fails open: agents keep working past the capacity while Redis is away.
  for (let i = 0; i < CAPACITY + 1; i++) expect((await create(second.url, 'outage-bot')).status).toBe(200);
  // The replay cache fails closed: a delivery that cannot be checked is not acted on.
  const created = await create(h.url, 'outage-bot');
  const click = signedClick(created.body);
  const refused = await post(second.url, INTERACTIONS_PATH, click.raw, click.headers);
  expect(refused).toMatchObject({ status: 503, body: { error: 'replay_cache_unavailable' } });
  expect((await h.get(`/api/guard/status?requestId=${created.body.requestId}`)).body.status).toBe('ready_for_approval');

  redis = await startRedis(redis.port, 'SIGTERM');
  // The clients reconnect on their own (backoff up to 2 s); Slack would resend, so may we.
  const accepted = await eventually(
    async () => {
      const res = await post(second.url, INTERACTIONS_PATH, click.raw, click.headers);
      return res.status === 503 ? undefined : res;
    },
    { timeoutMs: 20_000, intervalMs: 250, what: 'the replica to reach Redis again' },
  );
  expect(accepted).toMatchObject({ status: 200, body: { ok: true, status: 'received' } });
  expect(await h.outcomeOf(accepted, click.sent)).toMatchObject({ ok: true, status: 'approved' });
  expect(await post(h.url, INTERACTIONS_PATH, click.raw, click.headers)).toMatchObject({
    status: 400,
    body: { error: 'replay_detected' },
  });
  // And the limiter counts again, in the new Redis.
  for (let i = 0; i < CAPACITY; i++) expect((await create(h.url, 'outage-bot')).status).toBe(200);
  expect((await create(second.url, 'outage-bot')).status).toBe(429);
}, 60_000);
