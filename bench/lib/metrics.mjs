// Reads the kernel's Prometheus /metrics: group-commit batches and durations, memory.

/** Parses Prometheus text into [{name, labels, value}]. */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const l of m[2].slice(1, -1).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

export async function scrapeMetrics(baseUrl) {
  try {
    const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
    if (res.status !== 200) return null;
    return parseMetrics(await res.text());
  } catch {
    return null;
  }
}

function sumOf(metrics, name, filter = () => true) {
  return metrics.filter((m) => m.name === name && filter(m.labels)).reduce((a, m) => a + m.value, 0);
}

/** The few numbers the report uses, from one scrape. */
export function keyNumbers(metrics) {
  if (metrics === null) return null;
  const buckets = metrics
    .filter((m) => m.name === 'custos_audit_commit_duration_seconds_bucket')
    .map((m) => ({ le: m.labels.le === '+Inf' ? Infinity : Number(m.labels.le), count: m.value }))
    .sort((a, b) => a.le - b.le);
  return {
    commits: sumOf(metrics, 'custos_audit_commit_duration_seconds_count'),
    commitSeconds: sumOf(metrics, 'custos_audit_commit_duration_seconds_sum'),
    commitBuckets: buckets,
    batchUnits: sumOf(metrics, 'custos_commit_batch_size_sum'),
    rssBytes: sumOf(metrics, 'custos_process_resident_memory_bytes'),
    heapUsedBytes: sumOf(metrics, 'custos_nodejs_heap_size_used_bytes'),
    heapTotalBytes: sumOf(metrics, 'custos_nodejs_heap_size_total_bytes'),
    externalBytes: sumOf(metrics, 'custos_nodejs_external_memory_bytes'),
  };
}

/** What happened between two scrapes: commits, mean batch, mean commit time, and a commit-time p99 bound. */
export function commitDelta(before, after) {
  if (before === null || after === null) return null;
  const commits = after.commits - before.commits;
  const units = after.batchUnits - before.batchUnits;
  const seconds = after.commitSeconds - before.commitSeconds;
  let p99UpperMs = null;
  if (commits > 0) {
    const target = 0.99 * commits;
    for (const b of after.commitBuckets) {
      const prev = before.commitBuckets.find((x) => x.le === b.le)?.count ?? 0;
      if (b.count - prev >= target) {
        p99UpperMs = b.le === Infinity ? Infinity : b.le * 1000;
        break;
      }
    }
  }
  return {
    commits,
    units,
    meanBatch: commits > 0 ? units / commits : null,
    meanCommitMs: commits > 0 ? (1000 * seconds) / commits : null,
    commitBusyShare: null,
    commitP99UpperBoundMs: p99UpperMs,
    commitSeconds: seconds,
  };
}
