/** At most `max` calls in flight; the others wait their turn in arrival order, never refused. */
export class Slots {
  private used = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly max: number) {}

  get inFlight(): number {
    return this.used;
  }

  async run<T>(call: () => Promise<T>): Promise<T> {
    if (this.used < this.max) this.used += 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await call();
    } finally {
      // The slot passes straight to the next waiter, so a newcomer cannot overtake the queue.
      const next = this.waiting.shift();
      if (next) next();
      else this.used -= 1;
    }
  }
}
