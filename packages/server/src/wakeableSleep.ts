/**
 * A sleep its owner can cut short: `pause(ms)` resolves after ms, or at once when `wake()` is
 * called (the webhook exporters' loops, woken when they close so that a close does not wait out a
 * back-off). `wake()` ends the pause in progress, if any.
 */
export function wakeableSleep(): { pause(ms: number): Promise<void>; wake(): void } {
  let wakeCurrent: (() => void) | undefined;
  return {
    pause: (ms) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        wakeCurrent = () => {
          clearTimeout(timer);
          resolve();
        };
      }),
    wake: () => wakeCurrent?.(),
  };
}
