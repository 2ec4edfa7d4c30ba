import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { useSearchParams } from 'react-router';
import { getStorageUsage, listCameras, listChannels, listRecordings, type RecordingFilter } from '../../api/endpoints';
import type { Recording, StorageUsage } from '../../api/types';
import { Loading } from '../../auth/RequireAuth';
import { HlsPlayer } from '../../components/HlsPlayer';
import { Icon } from '../../components/Icons';
import { useToast } from '../../components/Toasts';
import { EmptyState, Modal, PageHeader } from '../../components/ui';
import { formatBytes, formatDateTime, formatDuration, humanize } from '../../lib/format';
import { useDocumentTitle } from '../../useDocumentTitle';

const STATUS_TONE: Record<string, string> = { recording: 'badge-live', complete: 'badge-ok', failed: 'badge-bad' };

/** `datetime-local` (local time) → RFC 3339 (UTC). */
function toRfc3339(local: string): string | undefined {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** Recordings matching `filter`, newest first, with playback (HLS VOD) and download. */
export function RecordingsTable({
  filter,
  names,
  refreshMs,
}: {
  filter: RecordingFilter;
  names: Record<string, string>;
  /** Read the first page again this often (a recording in progress grows, then completes). */
  refreshMs?: number;
}) {
  const toast = useToast();
  const [items, setItems] = useState<Recording[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [playing, setPlaying] = useState<Recording | null>(null);
  const key = JSON.stringify(filter);

  const load = useCallback(
    async (after?: string) => {
      const page = await listRecordings({ ...filter, cursor: after, limit: 50 });
      setItems((all) => (after ? [...(all ?? []), ...page.items] : page.items));
      setCursor(page.next_cursor ?? null);
    },
    [key],
  );

  useEffect(() => {
    setItems(null);
    load().catch((err) => {
      toast.error(err, 'The recordings could not be loaded');
      setItems([]);
    });
  }, [load, toast]);

  useEffect(() => {
    if (!refreshMs) return;
    const t = window.setInterval(() => {
      if (document.visibilityState === 'visible' && !playing) load().catch(() => {});
    }, refreshMs);
    return () => window.clearInterval(t);
  }, [load, refreshMs, playing]);

  if (items === null) return <Loading />;
  if (items.length === 0) return <EmptyState icon="history" title="No recordings match" />;
  return (
    <>
      <div className="table-wrap">
        <table className="table recordings-table">
          <caption className="visually-hidden">Recordings</caption>
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Source</th>
              <th scope="col">Duration</th>
              <th scope="col">Size</th>
              <th scope="col">Tier</th>
              <th scope="col">Status</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {items.map((r) => (
              <tr key={r.id} data-recording={r.id} data-status={r.status}>
                <td className="nowrap">{formatDateTime(r.started_at)}</td>
                <td>{names[r.channel_id] ?? <span className="mono small">{r.channel_id.slice(0, 8)}…</span>}</td>
                <td className="nowrap">{formatDuration(r.duration_seconds)}</td>
                <td className="nowrap">{formatBytes(r.size_bytes)}</td>
                <td>{humanize(r.tier)}</td>
                <td>
                  <span className={`badge ${STATUS_TONE[r.status] ?? 'badge-neutral'}`}>{humanize(r.status)}</span>
                  {r.discontinuities > 0 && <span className="small muted block">{r.discontinuities} source changes</span>}
                </td>
                <td>
                  <div className="row-actions">
                    <button type="button" className="button button-secondary button-small" onClick={() => setPlaying(r)} aria-label={`Play recording of ${formatDateTime(r.started_at)}`}>
                      <Icon name="play" size={16} /> Play
                    </button>
                    <a className="button button-ghost button-small" href={r.download_url} download aria-label={`Download recording of ${formatDateTime(r.started_at)}`}>
                      <Icon name="download" size={16} /> Download
                    </a>
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {cursor && (
        <p className="center">
          <button type="button" className="button button-secondary" onClick={() => load(cursor).catch((err) => toast.error(err))}>
            Show older recordings
          </button>
        </p>
      )}
      <Modal open={playing !== null} wide title={playing ? `Recording of ${formatDateTime(playing.started_at)}` : ''} onClose={() => setPlaying(null)}>
        {playing && (
          <>
            <HlsPlayer src={playing.playlist_url} label="Recording" testId="recording-player" />
            <p className="small muted">
              {names[playing.channel_id] ?? playing.channel_id} · {formatDuration(playing.duration_seconds)} · {formatBytes(playing.size_bytes)} ·{' '}
              <a href={playing.download_url} download>
                Download the MP4
              </a>
            </p>
          </>
        )}
      </Modal>
    </>
  );
}

const FILTERS = ['channel_id', 'from', 'to', 'tier', 'status'] as const;

export function RecordingsPage() {
  useDocumentTitle('Recordings');
  const [params, setParams] = useSearchParams();
  const [names, setNames] = useState<Record<string, string>>({});
  const [usage, setUsage] = useState<StorageUsage | null>(null);
  const [draft, setDraft] = useState<Record<string, string>>(() => Object.fromEntries(FILTERS.map((k) => [k, params.get(k) ?? ''])));

  useEffect(() => {
    const ctrl = new AbortController();
    Promise.all([listChannels({ limit: 200 }, ctrl.signal), listCameras(ctrl.signal)])
      .then(([ch, cams]) => {
        const n: Record<string, string> = {};
        for (const c of ch.items) n[c.id] = c.name;
        for (const c of cams.items) n[c.channel_id] = c.name;
        setNames(n);
      })
      .catch(() => {});
    getStorageUsage(ctrl.signal)
      .then(setUsage)
      .catch(() => {});
    return () => ctrl.abort();
  }, []);

  const filter: RecordingFilter = {
    channel_id: params.get('channel_id') || undefined,
    from: toRfc3339(params.get('from') ?? ''),
    to: toRfc3339(params.get('to') ?? ''),
    tier: params.get('tier') || undefined,
    status: params.get('status') || undefined,
  };

  function apply(e: FormEvent) {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const k of FILTERS) if (draft[k]) next.set(k, draft[k]!);
    setParams(next);
  }
  const set = (k: string) => (e: { target: { value: string } }) => setDraft((d) => ({ ...d, [k]: e.target.value }));

  return (
    <>
      <PageHeader
        title="Recordings"
        lead={
          usage
            ? usage.tiers
                .filter((t) => t.configured)
                .map((t) => `${humanize(t.tier)}: ${t.files} files, ${formatBytes(t.bytes)}`)
                .join(' · ')
            : 'Every recorded file, with playback and download.'
        }
      />
      <form className="filters card" onSubmit={apply} aria-label="Filter recordings">
        <label>
          <span>Channel or camera</span>
          <select value={draft.channel_id} onChange={set('channel_id')}>
            <option value="">All</option>
            {Object.entries(names)
              .sort((a, b) => a[1].localeCompare(b[1]))
              .map(([id, name]) => (
                <option key={id} value={id}>
                  {name}
                </option>
              ))}
          </select>
        </label>
        <label>
          <span>From</span>
          <input type="datetime-local" value={draft.from} onChange={set('from')} />
        </label>
        <label>
          <span>Until</span>
          <input type="datetime-local" value={draft.to} onChange={set('to')} />
        </label>
        <label>
          <span>Tier</span>
          <select value={draft.tier} onChange={set('tier')}>
            <option value="">Any</option>
            <option value="hot">Hot</option>
            <option value="warm">Warm</option>
            <option value="cold">Cold</option>
          </select>
        </label>
        <label>
          <span>Status</span>
          <select value={draft.status} onChange={set('status')}>
            <option value="">Any</option>
            <option value="recording">Recording</option>
            <option value="complete">Complete</option>
            <option value="failed">Failed</option>
          </select>
        </label>
        <div className="filters-actions">
          <button type="submit" className="button button-primary button-small">
            Apply filters
          </button>
          <button
            type="button"
            className="button button-ghost button-small"
            onClick={() => {
              setDraft(Object.fromEntries(FILTERS.map((k) => [k, ''])));
              setParams(new URLSearchParams());
            }}
          >
            Clear
          </button>
        </div>
      </form>
      <RecordingsTable filter={filter} names={names} />
    </>
  );
}
