/**
 * Agent identity through to the workflow (issue 8). The HTTP side of security (keys, limits, headers, content types,
 * body limits, admin routes, logs) is tested in-process in test/api/security.test.ts.
 */
import { eventually } from '../helpers/eventually.js';
import { requestBody, startHarness, type Harness } from './harness.js';

const RELEASE_KEY = 'release-key-fedcba9876543210';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ env: { AGENT_API_KEYS: `release-bot:${RELEASE_KEY}` } });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

test('the agent behind a key is recorded in the workflow input and is the actor of request_created', async () => {
  const res = await h.post('/api/guard/request', requestBody('simple'), bearer(RELEASE_KEY));
  expect(res.status).toBe(200);
  const { requestId } = res.body as { requestId: string };
  expect((await h.api.gateway.input(requestId)).agent).toBe('release-bot');
  const created = await eventually(
    () => h.audit.lines().find((l) => l.event === 'request_created' && l.requestId === requestId),
    { timeoutMs: 15_000, what: 'the request_created audit line' },
  );
  expect(created).toMatchObject({ actor: 'release-bot', action: 'simple' });
});
