import { ApplicationFailure } from '@temporalio/common';
import { Gauge, Registry } from 'prom-client';
import { SlackUpdateQueue } from '../../activities/slack-update-queue.js';

function setup() {
  const gauge = new Gauge({ name: 'slack_update_queue_depth', help: 'test', registers: [new Registry()] });
  const depth = async () => (await gauge.get()).values[0]?.value ?? 0;
  const sent: string[] = [];
  /** A send that records itself and finishes when `release()` is called. */
  const held = (label: string) => {
    let release: () => void = () => {};
    const done = new Promise<void>((r) => (release = r));
    return {
      send: async () => {
        sent.push(label);
        await done;
      },
      release: () => release(),
    };
  };
  const instant = (label: string) => async () => void sent.push(label);
  return { queue: new SlackUpdateQueue(gauge), depth, sent, held, instant };
}

const ref = (channel: string, ts: string) => ({ channel, ts });
const tick = () => new Promise((r) => setImmediate(r));

describe('SlackUpdateQueue', () => {
  test('a newer render of a waiting message replaces it; only the newest is sent', async () => {
    const { queue, sent, held, instant, depth } = setup();
    const busy = held('other v1');
    const first = queue.submit(ref('C1', '1.1'), 1, busy.send);
    const stale = queue.submit(ref('C1', '2.2'), 2, instant('msg v2'));
    const fresh = queue.submit(ref('C1', '2.2'), 3, instant('msg v3'));
    expect(await depth()).toBe(1);
    await expect(stale).resolves.toBe('superseded');
    busy.release();
    await expect(first).resolves.toBe('sent');
    await expect(fresh).resolves.toBe('sent');
    expect(sent).toEqual(['other v1', 'msg v3']);
    expect(await depth()).toBe(0);
  });

  test('an older version is never sent after a newer one', async () => {
    const { queue, sent, instant } = setup();
    await expect(queue.submit(ref('C1', '1.1'), 5, instant('v5'))).resolves.toBe('sent');
    await expect(queue.submit(ref('C1', '1.1'), 4, instant('v4'))).resolves.toBe('superseded');
    await expect(queue.submit(ref('C1', '1.1'), 5, instant('v5 again'))).resolves.toBe('superseded');
    expect(sent).toEqual(['v5']);
  });

  test('one update in flight per channel; channels do not wait for each other', async () => {
    const { queue, sent, held, instant } = setup();
    const a = held('C1 a');
    const pa = queue.submit(ref('C1', '1.1'), 1, a.send);
    const pb = queue.submit(ref('C1', '2.2'), 1, instant('C1 b'));
    const pc = queue.submit(ref('C2', '3.3'), 1, instant('C2 c'));
    await pc;
    await tick();
    expect(sent).toEqual(['C1 a', 'C2 c']);
    a.release();
    await Promise.all([pa, pb]);
    expect(sent).toEqual(['C1 a', 'C2 c', 'C1 b']);
  });

  test('a 429 holds the whole channel back for Retry-After and fails that update for Temporal to retry', async () => {
    const { queue, sent, instant, depth } = setup();
    const limited = ApplicationFailure.create({ type: 'slack_rate_limited', nextRetryDelay: 300 });
    const started = Date.now();
    const p1 = queue.submit(ref('C1', '1.1'), 1, async () => {
      sent.push('limited');
      throw limited;
    });
    await expect(p1).rejects.toBe(limited);
    const p2 = queue.submit(ref('C1', '2.2'), 1, instant('after pause'));
    await tick();
    expect(sent).toEqual(['limited']);
    expect(await depth()).toBe(1);
    await expect(p2).resolves.toBe('sent');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(await depth()).toBe(0);
  });

  test('other failures reject the waiting activity and leave the channel open', async () => {
    const { queue, sent, instant } = setup();
    const boom = new Error('503');
    await expect(queue.submit(ref('C1', '1.1'), 1, () => Promise.reject(boom))).rejects.toBe(boom);
    await expect(queue.submit(ref('C1', '1.1'), 1, instant('retry'))).resolves.toBe('sent');
    expect(sent).toEqual(['retry']);
  });
});
