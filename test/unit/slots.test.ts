import { Slots } from '../../gateway/slots.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Slots', () => {
  test('at most max calls run at once; the rest run in arrival order as slots free up', async () => {
    const slots = new Slots(2);
    const release: Array<() => void> = [];
    const started: number[] = [];
    const runs = [0, 1, 2, 3, 4].map((i) =>
      slots.run(async () => {
        started.push(i);
        await new Promise<void>((resolve) => release.push(resolve));
        return i;
      }),
    );
    await tick();
    expect(started).toEqual([0, 1]);
    expect(slots.inFlight).toBe(2);
    release.shift()!();
    await tick();
    expect(started).toEqual([0, 1, 2]);
    while (release.length > 0) {
      release.shift()!();
      await tick();
    }
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3, 4]);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(slots.inFlight).toBe(0);
  });

  test('a call that throws frees its slot', async () => {
    const slots = new Slots(1);
    await expect(slots.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(slots.inFlight).toBe(0);
    await expect(slots.run(async () => 'next')).resolves.toBe('next');
  });
});
