/**
 * The load harness clicks a request's button only once its message is in Slack (bench/service.ts SlackTraffic), as an
 * approver would: the message here is the one the service renders, posted to the fake Slack by the real WebClient.
 */
import { LogLevel, WebClient } from '@slack/web-api';
import { SlackTraffic } from '../../bench/service.js';
import { startFakeSlack, type FakeSlack } from '../../dev/fake-slack.js';
import { initialState } from '../../domain/request-state.js';
import { renderRequestMessage } from '../../domain/slack-message.js';
import { makePlan, makeRequest } from '../fixtures/plans.js';

let fake: FakeSlack;
let traffic: SlackTraffic;
let slack: WebClient;

const quiet = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  setLevel() {},
  getLevel: () => LogLevel.ERROR,
  setName() {},
};

beforeAll(async () => {
  fake = await startFakeSlack({ onCall: (call) => traffic.record(call) });
  traffic = new SlackTraffic(fake);
  slack = new WebClient('xoxb-bench-token', { slackApiUrl: fake.url, retryConfig: { retries: 0 }, logger: quiet });
});
afterAll(async () => {
  await fake.close();
});

function post(requestId: string, threadTs?: string) {
  const input = {
    requestId,
    request: makeRequest(),
    plan: makePlan(),
    createdAt: '2026-12-02T00:00:00.000Z',
    expiresAt: '2026-12-02T01:00:00.000Z',
  };
  const message = renderRequestMessage(input.request, input.plan, initialState(input));
  return slack.chat.postMessage({ channel: 'C_BENCH', ...message, ...(threadTs ? { thread_ts: threadTs } : {}) });
}

const settled = (p: Promise<void>) =>
  Promise.race([p.then(() => 'posted'), new Promise((r) => setTimeout(() => r('waiting'), 100))]);

test("a click waits for its request's message, not another's nor a reply in a thread", async () => {
  const waiting = traffic.posted('req_a');
  const posted = await post('req_b');
  expect(await settled(waiting)).toBe('waiting');
  await post('req_a', posted.ts);
  expect(await settled(waiting)).toBe('waiting');
  await post('req_a');
  expect(await settled(waiting)).toBe('posted');
});

test('a message posted before the click asks is found at once, once', async () => {
  await post('req_c');
  expect(await settled(traffic.posted('req_c'))).toBe('posted');
  expect(await settled(traffic.posted('req_c', 1000))).toBe('waiting');
});

test('a message that never comes lets the click go after the bound', async () => {
  const started = Date.now();
  await traffic.posted('req_never', 200);
  expect(Date.now() - started).toBeGreaterThanOrEqual(190);
});
