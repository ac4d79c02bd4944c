// Alerts per day by severity: a stacked bar chart drawn as SVG here (no chart library), with
// the same figures in a table for screen readers.
import { SEVERITIES } from "../session";
import type { S } from "../api/client";

export interface Day {
  day: string; // YYYY-MM-DD (UTC)
  counts: Record<S["Severity"], number>;
}

export function lastDays(n: number, now = new Date()): string[] {
  const out: string[] = [];
  for (let i = n - 1; i >= 0; i--) out.push(new Date(now.getTime() - i * 86400_000).toISOString().slice(0, 10));
  return out;
}

export function DailyChart({ days }: { days: Day[] }) {
  const w = 640;
  const h = 200;
  const pad = { l: 32, b: 22, t: 8, r: 4 };
  const max = Math.max(1, ...days.map((d) => SEVERITIES.reduce((s, k) => s + d.counts[k], 0)));
  const bw = (w - pad.l - pad.r) / Math.max(days.length, 1);
  const y = (v: number) => h - pad.b - (v / max) * (h - pad.b - pad.t);
  const ticks = [0, Math.ceil(max / 2), max];
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${w} ${h}`} role="img" aria-label={`Alerts per day for the last ${days.length} days, by severity`}>
        {ticks.map((t) => (
          <g key={t}>
            <line class="grid" x1={pad.l} x2={w - pad.r} y1={y(t)} y2={y(t)} />
            <text class="tick" x={pad.l - 4} y={y(t) + 4} text-anchor="end">
              {t}
            </text>
          </g>
        ))}
        {days.map((d, i) => {
          let acc = 0;
          return (
            <g key={d.day}>
              {[...SEVERITIES].reverse().map((s) => {
                const v = d.counts[s];
                if (!v) return null;
                const top = y(acc + v);
                const rect = <rect key={s} class={`sev-${s.toLowerCase()}`} x={pad.l + i * bw + 1} width={Math.max(bw - 2, 1)} y={top} height={y(acc) - top} />;
                acc += v;
                return rect;
              })}
              {i % 5 === 0 ? (
                <text class="tick" x={pad.l + i * bw + bw / 2} y={h - 6} text-anchor="middle">
                  {d.day.slice(5)}
                </text>
              ) : null}
            </g>
          );
        })}
      </svg>
      <figcaption class="legend">
        {SEVERITIES.map((s) => (
          <span key={s}>
            <i class={`swatch sev-${s.toLowerCase()}`} aria-hidden="true" /> {s}
          </span>
        ))}
      </figcaption>
      {/* A table ignores width and overflow: the hidden box is a div around it, or the
          table's own width makes the page scroll sideways on a phone. */}
      <div class="visually-hidden">
        <table>
          <caption>Alerts per day by severity</caption>
          <thead>
            <tr>
              <th scope="col">Day</th>
              {SEVERITIES.map((s) => (
                <th scope="col" key={s}>
                  {s}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {days.map((d) => (
              <tr key={d.day}>
                <th scope="row">{d.day}</th>
                {SEVERITIES.map((s) => (
                  <td key={s}>{d.counts[s]}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </figure>
  );
}
