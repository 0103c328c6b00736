// Restarts are queued, never raced: at most one runs at a time, and requests made while one is waiting to start share it.

export class RestartQueue {
  private tail: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;

  constructor(private readonly task: () => Promise<void>) {}

  /** Resolves when a restart that started after this call has finished (rejects with that restart's error). */
  request(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.tail
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.task();
      });
    this.queued = next;
    this.tail = next;
    return next;
  }

  /** Resolves once everything requested so far has finished (whatever the outcome). */
  idle(): Promise<void> {
    return this.tail.catch(() => undefined);
  }
}
