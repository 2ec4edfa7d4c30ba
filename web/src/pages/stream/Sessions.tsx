import { useCallback, useEffect, useMemo, useState } from 'react';
import { Link, useParams, useSearchParams } from 'react-router';
import { ApiError } from '../../api/client';
import { getSession, listChannels, listSessions } from '../../api/endpoints';
import type { Channel, SessionView } from '../../api/types';
import { Loading } from '../../auth/RequireAuth';
import { Icon } from '../../components/Icons';
import { useToast } from '../../components/Toasts';
import { EmptyState, PageHeader, Stat } from '../../components/ui';
import { formatBytes, formatDateTime, formatDuration, formatTime, humanize } from '../../lib/format';
import { platform } from '../../lib/platforms';
import { useDocumentTitle } from '../../useDocumentTitle';
import { NotFound } from '../NotFound';
import { PlatformMark } from './DestinationForm';

function useChannelNames(): Record<string, string> {
  const [names, setNames] = useState<Record<string, string>>({});
  useEffect(() => {
    const ctrl = new AbortController();
    listChannels({}, ctrl.signal)
      .then((l) => setNames(Object.fromEntries(l.items.map((c: Channel) => [c.id, c.name]))))
      .catch(() => {});
    return () => ctrl.abort();
  }, []);
  return names;
}

function totalBytes(s: SessionView): number {
  return s.destinations.reduce((n, d) => n + Number(d.bytes_sent), 0);
}

function SessionStatus({ s }: { s: SessionView }) {
  if (!s.ended_at) {
    return (
      <span className="badge badge-live">
        <span className="badge-dot pulse" aria-hidden="true" /> Live
      </span>
    );
  }
  const errors = s.destinations.filter((d) => d.last_error).length;
  return errors ? (
    <span className="badge badge-warn">
      <span className="badge-dot" aria-hidden="true" /> Ended with errors
    </span>
  ) : (
    <span className="badge badge-neutral">
      <span className="badge-dot" aria-hidden="true" /> Ended
    </span>
  );
}

/** Session history, newest first; `base` is where detail pages live (operator or admin). */
export function SessionsPage({ base = '/stream/sessions' }: { base?: string }) {
  useDocumentTitle('Session history');
  const toast = useToast();
  const [params, setParams] = useSearchParams();
  const channelId = params.get('channel') ?? '';
  const names = useChannelNames();
  const [items, setItems] = useState<SessionView[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);

  const load = useCallback(
    async (after?: string, signal?: AbortSignal) => {
      const page = await listSessions({ channel_id: channelId || undefined, cursor: after, limit: 25 }, signal);
      setItems((all) => (after ? [...(all ?? []), ...page.items] : page.items));
      setCursor(page.next_cursor ?? null);
    },
    [channelId],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    setItems(null);
    load(undefined, ctrl.signal).catch((err) => {
      if (ctrl.signal.aborted) return;
      toast.error(err, 'Sessions could not be loaded');
      setItems([]);
    });
    return () => ctrl.abort();
  }, [load, toast]);

  const channelOptions = useMemo(() => Object.entries(names).sort((a, b) => a[1].localeCompare(b[1])), [names]);

  return (
    <>
      <PageHeader
        title="Session history"
        lead="Every streaming session with what each destination delivered and what went wrong."
        actions={
          <div className="filter">
            <label htmlFor="session-channel" className="small muted">
              Channel
            </label>
            <select
              id="session-channel"
              value={channelId}
              onChange={(e) => {
                const next = new URLSearchParams(params);
                if (e.target.value) next.set('channel', e.target.value);
                else next.delete('channel');
                setParams(next);
              }}
            >
              <option value="">All channels</option>
              {channelOptions.map(([id, name]) => (
                <option key={id} value={id}>
                  {name}
                </option>
              ))}
            </select>
          </div>
        }
      />
      {items === null ? (
        <Loading />
      ) : items.length === 0 ? (
        <EmptyState icon="history" title="No sessions yet">
          Sessions appear here once a channel goes live to its destinations.
        </EmptyState>
      ) : (
        <>
          <div className="table-wrap">
            <table className="table table-click">
              <caption className="visually-hidden">Streaming sessions</caption>
              <thead>
                <tr>
                  <th scope="col">Started</th>
                  <th scope="col">Channel</th>
                  <th scope="col">Duration</th>
                  <th scope="col">Destinations</th>
                  <th scope="col">Sent</th>
                  <th scope="col">Status</th>
                </tr>
              </thead>
              <tbody>
                {items.map((s) => (
                  <tr key={s.id}>
                    <td>
                      <Link to={`${base}/${s.id}`} className="row-link">
                        {formatDateTime(s.started_at)}
                      </Link>
                    </td>
                    <td>{names[s.channel_id] ?? <span className="muted">Deleted channel</span>}</td>
                    <td className="nowrap">{formatDuration(s.duration_seconds)}</td>
                    <td>
                      <span className="marks">
                        {s.destinations.map((d) => (
                          <span key={d.destination_id} title={d.name}>
                            <PlatformMark id={d.platform} size="small" />
                          </span>
                        ))}
                      </span>
                      <span className="visually-hidden">{s.destinations.map((d) => d.name).join(', ')}</span>
                    </td>
                    <td className="nowrap">{formatBytes(totalBytes(s))}</td>
                    <td>
                      <SessionStatus s={s} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {cursor && (
            <p className="center">
              <button
                type="button"
                className="button button-secondary"
                disabled={loadingMore}
                onClick={async () => {
                  setLoadingMore(true);
                  try {
                    await load(cursor);
                  } catch (err) {
                    toast.error(err);
                  } finally {
                    setLoadingMore(false);
                  }
                }}
              >
                {loadingMore ? 'Loading…' : 'Show older sessions'}
              </button>
            </p>
          )}
        </>
      )}
    </>
  );
}

const EVENT_TONE: Record<string, string> = {
  session_started: 'ok',
  session_stopped: 'neutral',
  destination_error: 'bad',
  destination_started: 'ok',
  destination_stopped: 'neutral',
};

export function SessionDetailPage({ base = '/stream/sessions' }: { base?: string }) {
  const { sessionId } = useParams();
  const toast = useToast();
  const names = useChannelNames();
  const [s, setS] = useState<SessionView | null>(null);
  const [missing, setMissing] = useState(false);
  useDocumentTitle('Session');

  useEffect(() => {
    if (!sessionId) return;
    const ctrl = new AbortController();
    const load = () =>
      getSession(sessionId, ctrl.signal)
        .then(setS)
        .catch((err) => {
          if (ctrl.signal.aborted) return;
          if (err instanceof ApiError && err.status === 404) setMissing(true);
          else toast.error(err, 'The session could not be loaded');
        });
    void load();
    // A session still running keeps growing: refresh it now and then.
    const t = window.setInterval(() => void load(), 5000);
    return () => {
      ctrl.abort();
      window.clearInterval(t);
    };
  }, [sessionId, toast]);

  if (missing) return <NotFound />;
  if (!s) return <Loading />;
  const channelName = names[s.channel_id];
  const destName = (id: string | null | undefined) => s.destinations.find((d) => d.destination_id === id)?.name;

  return (
    <>
      <PageHeader
        eyebrow={
          <Link to={base} className="back-link">
            <Icon name="arrowLeft" size={14} /> Session history
          </Link>
        }
        title={channelName ? `${channelName}` : 'Session'}
        lead={`${formatDateTime(s.started_at)}${s.ended_at ? ` – ${formatTime(s.ended_at)}` : ' – now'}`}
        actions={
          channelName ? (
            <Link to={`/stream/channels/${s.channel_id}`} className="button button-secondary">
              Control room
            </Link>
          ) : undefined
        }
      >
        <SessionStatus s={s} />
      </PageHeader>

      <div className="stat-row">
        <Stat label="Duration" value={formatDuration(s.duration_seconds)} />
        <Stat label="Destinations" value={s.destinations.length} />
        <Stat label="Data sent" value={formatBytes(totalBytes(s))} />
        <Stat label="Reconnects" value={s.destinations.reduce((n, d) => n + Number(d.reconnects), 0)} />
        <Stat label="Ended because" value={s.end_reason ? humanize(s.end_reason) : s.ended_at ? '—' : 'Still live'} />
      </div>

      <section aria-labelledby="per-dest" className="section">
        <h2 id="per-dest" className="section-title">
          Per destination
        </h2>
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Destination</th>
                <th scope="col">Time on air</th>
                <th scope="col">Sent</th>
                <th scope="col">Reconnects</th>
                <th scope="col">Last error</th>
              </tr>
            </thead>
            <tbody>
              {s.destinations.map((d) => (
                <tr key={d.destination_id}>
                  <td>
                    <div className="cell-with-mark">
                      <PlatformMark id={d.platform} size="small" />
                      <div>
                        <strong>{d.name}</strong>
                        <span className="muted small block">{platform(d.platform).name}</span>
                      </div>
                    </div>
                  </td>
                  <td className="nowrap">{formatDuration(d.connected_seconds)}</td>
                  <td className="nowrap">{formatBytes(Number(d.bytes_sent))}</td>
                  <td>{d.reconnects}</td>
                  <td className={d.last_error ? 'bad-text small' : 'muted'}>{d.last_error ?? 'None'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>

      <section aria-labelledby="events" className="section">
        <h2 id="events" className="section-title">
          Event log
        </h2>
        {s.events.length === 0 ? (
          <p className="muted">No events recorded.</p>
        ) : (
          <ol className="timeline">
            {s.events.map((e, i) => (
              <li key={`${e.at}-${i}`} className={`tl-${EVENT_TONE[e.kind] ?? 'neutral'}`}>
                <time dateTime={e.at} className="mono small">
                  {formatTime(e.at)}
                </time>
                <div>
                  <strong>{humanize(e.kind)}</strong>
                  {e.destination_id && destName(e.destination_id) && <span className="muted"> · {destName(e.destination_id)}</span>}
                  <span className="block small">{e.message}</span>
                </div>
              </li>
            ))}
          </ol>
        )}
      </section>
    </>
  );
}
