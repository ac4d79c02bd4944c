// Name similarity for bulk mapping tenants to PSA companies: Dice's coefficient over the
// character bigrams of the names with legal suffixes and punctuation removed.
const SUFFIXES = /\b(inc|ltd|llc|limited|gmbh|corp|corporation|co|company|plc|pty|sa|ag|bv)\b/g;

export function normalise(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9 ]+/g, " ").replace(SUFFIXES, " ").replace(/\s+/g, " ").trim();
}

function bigrams(s: string): Map<string, number> {
  const out = new Map<string, number>();
  const t = s.replace(/ /g, "");
  for (let i = 0; i < t.length - 1; i++) {
    const g = t.slice(i, i + 2);
    out.set(g, (out.get(g) ?? 0) + 1);
  }
  return out;
}

/** 0 (nothing alike) to 1 (the same name once normalised). */
export function similarity(a: string, b: string): number {
  const x = normalise(a);
  const y = normalise(b);
  if (!x || !y) return 0;
  if (x === y) return 1;
  const gx = bigrams(x);
  const gy = bigrams(y);
  let both = 0;
  let total = 0;
  for (const n of gx.values()) total += n;
  for (const n of gy.values()) total += n;
  for (const [g, n] of gx) both += Math.min(n, gy.get(g) ?? 0);
  return total ? (2 * both) / total : 0;
}

/** The best candidate for `name` at or above `threshold`, with its score. */
export function bestMatch<T>(name: string, candidates: T[], nameOf: (c: T) => string, threshold: number): { item: T; score: number } | undefined {
  let best: { item: T; score: number } | undefined;
  for (const c of candidates) {
    const score = similarity(name, nameOf(c));
    if (score >= threshold && (!best || score > best.score)) best = { item: c, score };
  }
  return best;
}
