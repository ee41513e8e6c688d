// A debouncer for query-as-you-type: only the last call within the delay runs.

export class Debouncer {
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly delayMs: number) {}

  /** Runs `fn` after the delay unless `schedule` or `cancel` is called again first. */
  schedule(fn: () => void): void {
    this.cancel();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      fn();
    }, this.delayMs);
  }

  /** Drops the scheduled call, if any. */
  cancel(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** Whether a call is waiting. */
  get pending(): boolean {
    return this.timer !== undefined;
  }
}
