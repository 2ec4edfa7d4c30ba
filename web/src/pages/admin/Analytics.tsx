import { useEffect, useState, type FormEvent } from 'react';
import { getDashboard, getSession, listDestinations, listSessions } from '../../api/endpoints';
import type { Dashboard, SessionView } from '../../api/types';
import { Loading } from '../../auth/RequireAuth';
import { useToast } from '../../components/Toasts';
import { PageHeader, Stat } from '../../components/ui';
import { formatBitrate, formatBytes } from '../../lib/format';
import { platform } from '../../lib/platforms';
import { useDocumentTitle } from '../../useDocumentTitle';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const RANGES = [
  { id: '24h', label: 'Last 24 hours', span: DAY, buckets: 24, step: HOUR },
  { id: '7d', label: 'Last 7 days', span: 7 * DAY, buckets: 7, step: DAY },
  { id: '30d', label: 'Last 30 days', span: 30 * DAY, buckets: 30, step: DAY },
  { id: 'custom', label: 'Custom range', span: 0, buckets: 0, step: 0 },
] as const;
type RangeId = (typeof RANGES)[number]['id'];

interface Bucket {
  from: number;
  to: number;
  d: Dashboard;
  failovers: number;
}

interface Data {
  total: Dashboard;
  buckets: Bucket[];
  failovers: number;
}

/** Runs `tasks` with at most `n` in flight. */
async function limited<T>(tasks: (() => Promise<T>)[], n: number): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, tasks.length) }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]!();
      }
    }),
  );
  return out;
}

/**
 * Failovers are session events (`kind: failover`), only in a session's detail: read the details
 * of the sessions that overlap the range (at most 200 of them, newest first).
 */
async function failoverTimes(from: number, to: number): Promise<number[]> {
  const overlapping: string[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 10 && overlapping.length < 200; pages++) {
    const page = await listSessions({ limit: 100, cursor });
    let older = false;
    for (const s of page.items as SessionView[]) {
      const start = new Date(s.started_at).getTime();
      const end = s.ended_at ? new Date(s.ended_at).getTime() : Date.now();
      if (start < to && end >= from) overlapping.push(s.id);
      if (start < from) older = true;
    }
    cursor = page.next_cursor ?? undefined;
    if (!cursor || older) break;
  }
  const details = await limited(
    overlapping.slice(0, 200).map((id) => () => getSession(id)),
    4,
  );
  return details.flatMap((s) => (s.events ?? []).filter((e) => e.kind === 'failover').map((e) => new Date(e.at).getTime()));
}

/** Hours with two decimals below ten (short test sessions), one above. */
const hours = (h: number) => h.toFixed(h < 10 ? 2 : 1);

const toLocalInput = (ms: number) => {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
};

export function AnalyticsPage() {
  useDocumentTitle('Analytics');
  const toast = useToast();
  const [range, setRange] = useState<RangeId>('7d');
  const [custom, setCustom] = useState(() => ({ from: toLocalInput(Date.now() - 7 * DAY), to: toLocalInput(Date.now()) }));
  const [window_, setWindow] = useState<{ from: number; to: number; step: number } | null>(null);
  const [data, setData] = useState<Data | null>(null);
  const [destNames, setDestNames] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);

  // The range picked → a window and a bucket size.
  useEffect(() => {
    const r = RANGES.find((x) => x.id === range)!;
    if (range !== 'custom') {
      const to = Date.now();
      setWindow({ from: to - r.span, to, step: r.step });
    }
  }, [range]);

  function applyCustom(e: FormEvent) {
    e.preventDefault();
    const from = new Date(custom.from).getTime();
    const to = new Date(custom.to).getTime();
    if (!(from < to)) {
      setError('“From” must be before “until”.');
      return;
    }
    setError(null);
    const span = to - from;
    const step = span <= 2 * DAY ? HOUR : span <= 62 * DAY ? DAY : 7 * DAY;
    setWindow({ from, to, step });
  }

  useEffect(() => {
    listDestinations()
      .then((l) => setDestNames(Object.fromEntries(l.items.map((d) => [d.id, d.name]))))
      .catch(() => {});
  }, []);

  useEffect(() => {
    if (!window_) return;
    let cancelled = false;
    setData(null);
    (async () => {
      const { from, to, step } = window_;
      const edges: [number, number][] = [];
      for (let t = from; t < to; t += step) edges.push([t, Math.min(to, t + step)]);
      const [total, parts, fo] = await Promise.all([
        getDashboard(from, to),
        limited(
          edges.map(([a, b]) => () => getDashboard(a, b)),
          4,
        ),
        failoverTimes(from, to).catch(() => [] as number[]),
      ]);
      if (cancelled) return;
      const buckets = edges.map(([a, b], i) => ({ from: a, to: b, d: parts[i]!, failovers: fo.filter((t) => t >= a && t < b).length }));
      setData({ total, buckets, failovers: fo.filter((t) => t >= from && t < to).length });
    })().catch((err) => {
      if (cancelled) return;
      setError(err instanceof Error ? err.message : String(err));
      toast.error(err, 'The figures could not be loaded');
    });
    return () => {
      cancelled = true;
    };
  }, [window_, toast]);

  const step = window_?.step ?? DAY;
  const label = (ms: number) =>
    step < DAY
      ? new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
      : new Date(ms).toLocaleDateString(undefined, { month: 'short', day: 'numeric' });

  return (
    <>
      <PageHeader title="Analytics" lead="Streaming hours, concurrency, bandwidth, failovers and where the streams went." />
      <form className="filters card" onSubmit={applyCustom} aria-label="Time range">
        <label>
          <span>Range</span>
          <select value={range} onChange={(e) => setRange(e.target.value as RangeId)}>
            {RANGES.map((r) => (
              <option key={r.id} value={r.id}>
                {r.label}
              </option>
            ))}
          </select>
        </label>
        {range === 'custom' && (
          <>
            <label>
              <span>From</span>
              <input type="datetime-local" value={custom.from} onChange={(e) => setCustom((c) => ({ ...c, from: e.target.value }))} />
            </label>
            <label>
              <span>Until</span>
              <input type="datetime-local" value={custom.to} onChange={(e) => setCustom((c) => ({ ...c, to: e.target.value }))} />
            </label>
            <div className="filters-actions">
              <button type="submit" className="button button-primary button-small">
                Show
              </button>
            </div>
          </>
        )}
        {error && (
          <p className="field-error" role="alert">
            {error}
          </p>
        )}
      </form>

      {!data ? (
        <Loading />
      ) : (
        <>
          <div className="stat-grid" data-testid="analytics-totals">
            <Stat label="Streaming hours" value={hours(data.total.streaming_hours)} testId="stat-hours" />
            <Stat label="Sessions" value={data.total.sessions} testId="stat-sessions" />
            <Stat label="Peak concurrent streams" value={data.total.peak_concurrent_streams} />
            <Stat label="Peak bandwidth" value={formatBitrate(data.total.peak_bandwidth_bps)} />
            <Stat label="Sent to destinations" value={formatBytes(data.total.egress_bytes)} />
            <Stat label="Failovers" value={data.failovers} sub={`${data.total.destination_reconnects} destination reconnects`} testId="stat-failovers" />
          </div>
          <div className="chart-grid">
            <BarChart title="Streaming hours" unit="h" values={data.buckets.map((b) => ({ label: label(b.from), value: b.d.streaming_hours }))} format={(v) => `${hours(v)} h`} />
            <BarChart title="Concurrent streams (peak)" values={data.buckets.map((b) => ({ label: label(b.from), value: b.d.peak_concurrent_streams }))} format={(v) => String(v)} />
            <BarChart title="Bandwidth (peak)" values={data.buckets.map((b) => ({ label: label(b.from), value: b.d.peak_bandwidth_bps }))} format={formatBitrate} />
            <BarChart title="Failovers" values={data.buckets.map((b) => ({ label: label(b.from), value: b.failovers }))} format={(v) => String(v)} />
          </div>
          <PlatformChart total={data.total} />
          {Object.keys(data.total.egress_by_destination).length > 0 && (
            <section className="card chart-card" aria-labelledby="by-destination">
              <h2 id="by-destination" className="card-title">
                Sent per destination
              </h2>
              <HBars
                rows={Object.entries(data.total.egress_by_destination).map(([id, bytes]) => ({ label: destNames[id] ?? `${id.slice(0, 8)}…`, value: bytes }))}
                format={formatBytes}
              />
            </section>
          )}
        </>
      )}
    </>
  );
}

/** A plain SVG bar chart over time buckets, with a table of the same figures for screen readers. */
function BarChart({ title, values, format }: { title: string; unit?: string; values: { label: string; value: number }[]; format: (v: number) => string }) {
  const W = 600;
  const H = 180;
  const PAD = 24;
  const max = Math.max(0, ...values.map((v) => v.value));
  const bw = (W - PAD) / Math.max(1, values.length);
  const id = title.replace(/\W+/g, '-').toLowerCase();
  const every = Math.ceil(values.length / 8);
  return (
    <section className="card chart-card" aria-labelledby={`chart-${id}`} data-chart={id}>
      <h2 id={`chart-${id}`} className="card-title">
        {title}
        <span className="muted small"> · max {format(max)}</span>
      </h2>
      <svg viewBox={`0 0 ${W} ${H + 20}`} className="chart" role="img" aria-label={`${title}: ${values.map((v) => `${v.label} ${format(v.value)}`).join(', ')}`}>
        <line x1={PAD} y1={H} x2={W} y2={H} className="chart-axis" />
        {values.map((v, i) => {
          const h = max > 0 ? (v.value / max) * (H - 10) : 0;
          return (
            <g key={i}>
              <rect x={PAD + i * bw + 2} y={H - h} width={Math.max(1, bw - 4)} height={h} className="chart-bar" data-value={v.value}>
                <title>{`${v.label}: ${format(v.value)}`}</title>
              </rect>
              {i % every === 0 && (
                <text x={PAD + i * bw + bw / 2} y={H + 15} className="chart-label" textAnchor="middle">
                  {v.label}
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </section>
  );
}

function HBars({ rows, format }: { rows: { label: string; value: number }[]; format: (v: number) => string }) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  return (
    <ul className="hbars">
      {rows
        .sort((a, b) => b.value - a.value)
        .map((r) => (
          <li key={r.label} data-label={r.label}>
            <span className="hbar-label">{r.label}</span>
            <span className="hbar-track" aria-hidden="true">
              <span className="hbar-fill" style={{ width: `${(r.value / max) * 100}%` }} />
            </span>
            <span className="hbar-value">{format(r.value)}</span>
          </li>
        ))}
    </ul>
  );
}

function PlatformChart({ total }: { total: Dashboard }) {
  const rows = Object.entries(total.platforms);
  return (
    <section className="card chart-card" aria-labelledby="platforms" data-testid="platform-distribution">
      <h2 id="platforms" className="card-title">
        Platform distribution
      </h2>
      {rows.length === 0 ? (
        <p className="muted">No destination streamed in this range.</p>
      ) : (
        <>
          <HBars rows={rows.map(([p, f]) => ({ label: platform(p).name, value: f.connected_hours }))} format={(v) => `${v.toFixed(2)} h`} />
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Platform</th>
                  <th scope="col">Sessions</th>
                  <th scope="col">Connected</th>
                  <th scope="col">Sent</th>
                  <th scope="col">Reconnects</th>
                </tr>
              </thead>
              <tbody>
                {rows.map(([p, f]) => (
                  <tr key={p}>
                    <td>{platform(p).name}</td>
                    <td>{f.sessions}</td>
                    <td>{f.connected_hours.toFixed(2)} h</td>
                    <td>{formatBytes(f.bytes_sent)}</td>
                    <td>{f.reconnects}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
