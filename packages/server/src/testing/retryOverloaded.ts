/**
 * One request sent as a well-behaved client sends it (the SDK does the same): an answer 503
 * `overloaded` — refused on arrival, before any decision, so a retry is safe — is sent again after
 * its Retry-After (with a little jitter), at most `attempts` times in all. The tests that fire bursts
 * at `custos serve` processes (replicas, crash safety, the compromised backend) go through it:
 * `custos serve` sheds load by default (--admission-latency-ms), and such a burst on a loaded test
 * machine may meet it; what they assert (codes used once, one audit chain) holds for every request
 * that was decided. The soak's load generator does not retry: it counts the refusals.
 */
export async function retryOverloaded<T extends { status: number }>(
  send: () => Promise<T>,
  { code, retryAfter }: { code: (answer: T) => string | undefined; retryAfter: (answer: T) => string | null | undefined },
  attempts = 20,
): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    const answer = await send();
    if (answer.status !== 503 || code(answer) !== 'overloaded' || attempt >= attempts) return answer;
    const seconds = Number(retryAfter(answer) ?? '1');
    await new Promise((resolve) => setTimeout(resolve, (Number.isFinite(seconds) && seconds > 0 ? seconds : 1) * 1000 * (1 + Math.random() / 2)));
  }
}
