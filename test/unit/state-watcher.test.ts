import type { Client } from '@temporalio/client';
import { StateWatcher } from '../../gateway/watcher.js';
import { initialState } from '../../domain/request-state.js';
import type { RequestView } from '../../workflows/messages.js';
import { makePlan, makeRequest } from '../fixtures/plans.js';

function view(status: RequestView['status'], version: number): RequestView {
  const base = initialState({
    requestId: 'req_1',
    request: makeRequest(),
    plan: makePlan(),
    createdAt: '2026-11-27T00:00:00.000Z',
    expiresAt: '2026-11-27T01:00:00.000Z',
  });
  return { ...base, status, version, slack: null };
}

/** A client that must not be used: a decided request is answered from what this process already knows. */
const untouchable = new Proxy({} as Client, {
  get: (_t, prop) => {
    throw new Error(`the Temporal client was used (${String(prop)})`);
  },
});

describe('StateWatcher and decided requests', () => {
  test('a decision learnt before a waiter subscribes is handed to it at once, without watching the history', async () => {
    const reads: string[] = [];
    const watcher = new StateWatcher(untouchable, async (id) => {
      reads.push(id);
      return view('ready_for_approval', 1);
    });
    watcher.publish(view('approved', 3));
    expect(watcher.decided('req_1')).toBe(true);
    await expect(watcher.waitForChange('req_1', 1, 5_000)).resolves.toMatchObject({ status: 'approved', version: 3 });
    const seen: number[] = [];
    const stop = watcher.subscribe('req_1', (v) => seen.push(v.version));
    stop();
    expect(seen).toEqual([3]);
    expect(watcher.listenerCount('req_1')).toBe(0);
    await expect(watcher.current('req_1')).resolves.toMatchObject({ status: 'approved' });
    expect(reads).toEqual([]);
  });

  test('an open request is not taken for decided', () => {
    const watcher = new StateWatcher(untouchable, async () => view('ready_for_approval', 1));
    watcher.publish(view('ready_for_approval', 2));
    expect(watcher.decided('req_1')).toBe(false);
  });

  test('a waiter already at the decided version hears nothing more and times out', async () => {
    const watcher = new StateWatcher(untouchable, async () => view('approved', 3));
    watcher.publish(view('approved', 3));
    await expect(watcher.waitForChange('req_1', 3, 50)).resolves.toBeNull();
  });
});
