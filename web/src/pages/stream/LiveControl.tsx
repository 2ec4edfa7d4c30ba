import { useCallback, useEffect, useMemo, useState } from 'react';
import { Link, useParams } from 'react-router';
import { ApiError } from '../../api/client';
import {
  getChannel,
  listDestinations,
  startDestination,
  startStreaming,
  stopDestination,
  stopStreaming,
} from '../../api/endpoints';
import type { Channel, Destination, DestinationStatus, InputStatus } from '../../api/types';
import { Loading } from '../../auth/RequireAuth';
import { Icon } from '../../components/Icons';
import { useToast } from '../../components/Toasts';
import { EmptyState, Modal, PageHeader, Stat } from '../../components/ui';
import { formatBitrate, formatBytes, formatClock, formatDuration, formatDateTime } from '../../lib/format';
import { platform } from '../../lib/platforms';
import { useLive, useTicking } from '../../live/useLive';
import { useDocumentTitle } from '../../useDocumentTitle';
import { NotFound } from '../NotFound';
import { inputOf } from './Channels';
import { PlatformMark } from './DestinationForm';
import { StateBadge, explainError, inputSummary, type CardState } from './live';
import { StreamKeyModal } from './publish';
import { LivePreview, SourcePanel } from './LiveExtras';

function InputPanel({ input }: { input: InputStatus }) {
  const live = input.input_state === 'live';
  return (
    <section className={`card input-card${live ? ' is-live' : ''}`} aria-labelledby="input-heading" data-testid="input-panel">
      <div className="card-head">
        <h2 id="input-heading">Input</h2>
        <span className={`badge ${live ? 'badge-ok' : 'badge-neutral'}`} data-input-state={input.input_state}>
          <span className={`badge-dot${live ? ' pulse' : ''}`} aria-hidden="true" />
          {live ? 'Live' : 'Idle'}
        </span>
      </div>
      <p className="input-summary" data-testid="input-summary">
        {inputSummary(input)}
      </p>
      <dl className="figures">
        <div>
          <dt>Resolution</dt>
          <dd>{live && input.video ? `${input.video.width}×${input.video.height}` : '—'}</dd>
        </div>
        <div>
          <dt>Frame rate</dt>
          <dd>{live && input.fps ? `${input.fps.toFixed(input.fps % 1 ? 1 : 0)} fps` : '—'}</dd>
        </div>
        <div>
          <dt>Bitrate</dt>
          <dd>{live ? formatBitrate(input.bitrate_bps) : '—'}</dd>
        </div>
        <div>
          <dt>Audio</dt>
          <dd>
            {live && input.audio
              ? `${input.audio.codec.toUpperCase()} ${Math.round(input.audio.sample_rate / 1000)} kHz ${input.audio.channels === 2 ? 'stereo' : input.audio.channels === 1 ? 'mono' : `${input.audio.channels} ch`}`
              : '—'}
          </dd>
        </div>
      </dl>
      {!live && (
        <p className="hint">
          Start your encoder with this channel’s server URL and stream key. Destinations wait for the input and
          connect as soon as it arrives.
        </p>
      )}
    </section>
  );
}

interface CardModel {
  id: string;
  name: string;
  platform: string;
  state: CardState;
  push?: DestinationStatus | undefined;
}

function DestinationCard({
  card,
  busy,
  onStop,
  onStart,
}: {
  card: CardModel;
  busy: boolean;
  onStop: () => void;
  onStart: () => void;
}) {
  const p = card.push;
  const err = explainError(p?.last_error);
  const running = card.state === 'live' || card.state === 'connecting' || card.state === 'retrying' || card.state === 'idle';
  return (
    <li className={`dest-card state-${card.state}`} data-destination={card.name} data-state={card.state}>
      <div className="dest-card-head">
        <PlatformMark id={card.platform} />
        <div className="dest-card-title">
          <h3>{card.name}</h3>
          <span className="muted small">{platform(card.platform).name}</span>
        </div>
        <StateBadge state={card.state} />
      </div>
      {p && (
        <dl className="figures figures-compact">
          <div>
            <dt>Bitrate</dt>
            <dd data-testid="dest-bitrate">{formatBitrate(p.bitrate_bps)}</dd>
          </div>
          <div>
            <dt>Sent</dt>
            <dd>{formatBytes(p.bytes_sent)}</dd>
          </div>
          <div>
            <dt>Connected</dt>
            <dd>{formatDuration(p.connected_seconds)}</dd>
          </div>
          <div>
            <dt>Reconnects</dt>
            <dd>{p.reconnects}</dd>
          </div>
        </dl>
      )}
      {err && card.state !== 'live' && (
        <div className={`dest-error${card.state === 'failed' ? ' is-bad' : ''}`} role="note">
          <Icon name="alert" size={16} />
          <div>
            <strong>{err.headline}</strong>
            {err.detail && <span>{err.detail}</span>}
          </div>
        </div>
      )}
      {card.state === 'stopped' && <p className="muted small">Stopped from this screen; the others keep running.</p>}
      <div className="dest-card-actions">
        {running ? (
          <button type="button" className="button button-secondary button-small" disabled={busy} onClick={onStop} aria-label={`Stop ${card.name}`}>
            <Icon name="stop" size={14} /> Stop
          </button>
        ) : (
          <button type="button" className="button button-secondary button-small" disabled={busy} onClick={onStart} aria-label={`${card.state === 'failed' ? 'Retry' : 'Start'} ${card.name}`}>
            <Icon name={card.state === 'failed' ? 'retry' : 'play'} size={14} /> {card.state === 'failed' ? 'Retry' : 'Start'}
          </button>
        )}
      </div>
    </li>
  );
}

export function LiveControlPage() {
  const { channelId } = useParams();
  const toast = useToast();
  const [channel, setChannel] = useState<Channel | null>(null);
  const [missing, setMissing] = useState(false);
  const [destinations, setDestinations] = useState<Destination[] | null>(null);
  const [stoppedHere, setStoppedHere] = useState<Set<string>>(new Set());
  const [busy, setBusy] = useState<string | null>(null);
  const [selected, setSelected] = useState<Set<string> | null>(null);
  const [confirmStop, setConfirmStop] = useState(false);
  const [showKey, setShowKey] = useState(false);
  const live = useLive(channelId);
  const st = live.status;
  const clock = useTicking(st?.streaming ? (st.elapsed_seconds ?? 0) : null, live.receivedAt);
  useDocumentTitle(channel ? (st?.streaming ? `● ${channel.name}` : channel.name) : 'Channel');

  useEffect(() => {
    if (!channelId) return;
    const ctrl = new AbortController();
    getChannel(channelId, ctrl.signal)
      .then(setChannel)
      .catch((err) => {
        if (ctrl.signal.aborted) return;
        if (err instanceof ApiError && err.status === 404) setMissing(true);
        else toast.error(err, 'The channel could not be loaded');
      });
    listDestinations(ctrl.signal)
      .then((l) => setDestinations(l.items))
      .catch((err) => {
        if (!ctrl.signal.aborted) toast.error(err, 'Destinations could not be loaded');
        setDestinations((d) => d ?? []);
      });
    return () => ctrl.abort();
  }, [channelId, toast]);

  // Preselect the destinations a plain "start" would use (enabled and auto-start).
  useEffect(() => {
    if (destinations && selected === null) {
      setSelected(new Set(destinations.filter((d) => d.enabled && d.auto_start).map((d) => d.id)));
    }
  }, [destinations, selected]);

  // What was stopped from this screen, per session (kept across reloads of the tab).
  const sessionId = st?.session_id ?? null;
  useEffect(() => {
    if (!sessionId) return setStoppedHere(new Set());
    try {
      const saved: unknown = JSON.parse(sessionStorage.getItem(`lunora.stopped.${sessionId}`) ?? '[]');
      setStoppedHere(new Set(Array.isArray(saved) ? saved.filter((x): x is string => typeof x === 'string') : []));
    } catch {
      setStoppedHere(new Set());
    }
  }, [sessionId]);
  const markStopped = useCallback(
    (id: string, stopped: boolean) =>
      setStoppedHere((prev) => {
        const next = new Set(prev);
        if (stopped) next.add(id);
        else next.delete(id);
        if (sessionId) {
          try {
            sessionStorage.setItem(`lunora.stopped.${sessionId}`, JSON.stringify([...next]));
          } catch {
            // no storage (private mode): only this page view remembers
          }
        }
        return next;
      }),
    [sessionId],
  );

  const cards = useMemo<CardModel[]>(() => {
    if (!st?.streaming) return [];
    const out: CardModel[] = st.destinations.map((d) => ({
      id: d.destination_id,
      name: d.name,
      platform: d.platform,
      state: d.state,
      push: d,
    }));
    for (const id of stoppedHere) {
      if (out.some((c) => c.id === id)) continue;
      const d = destinations?.find((x) => x.id === id);
      if (d) out.push({ id, name: d.name, platform: d.platform, state: 'stopped' });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }, [st, stoppedHere, destinations]);

  const others = useMemo(
    () => (destinations ?? []).filter((d) => d.enabled && !cards.some((c) => c.id === d.id)),
    [destinations, cards],
  );

  const act = useCallback(
    async (key: string, fn: () => Promise<unknown>, done?: string) => {
      setBusy(key);
      try {
        await fn();
        if (done) toast.success(done);
      } catch (err) {
        toast.error(err);
      } finally {
        setBusy(null);
        await live.refresh();
      }
    },
    [live, toast],
  );

  if (missing) return <NotFound />;
  if (!channelId) return null;
  if (!channel || !st || destinations === null) return <Loading label="Loading the control room…" />;

  const input = st.input ? inputOf({ status: st.input }) : inputOf(channel);
  const liveCount = cards.filter((c) => c.state === 'live').length;
  const activeCount = cards.filter((c) => c.state !== 'stopped').length;
  const enabled = destinations.filter((d) => d.enabled);
  const chosen = enabled.filter((d) => selected?.has(d.id));

  return (
    <div className="live-control">
      <PageHeader
        eyebrow={
          <Link to="/stream" className="back-link">
            <Icon name="arrowLeft" size={14} /> Channels
          </Link>
        }
        title={channel.name}
        actions={
          <>
            <button type="button" className="button button-secondary" onClick={() => setShowKey(true)}>
              <Icon name="key" /> Stream key
            </button>
            <Link to={`/stream/sessions?channel=${channel.id}`} className="button button-secondary">
              <Icon name="history" /> History
            </Link>
          </>
        }
      />

      <section className={`session-bar${st.streaming ? ' on-air' : ''}`} aria-label="Session" data-testid="session-bar">
        <div className="session-state">
          {st.streaming ? (
            <span className="on-air-pill" data-testid="on-air">
              <span className="rec-dot" aria-hidden="true" /> LIVE
            </span>
          ) : (
            <span className="off-air-pill" data-testid="off-air">
              Off air
            </span>
          )}
          <span className="session-clock mono" aria-label="Session time" data-testid="session-clock">
            {st.streaming ? formatClock(clock) : '0:00'}
          </span>
          {st.streaming && st.started_at && <span className="muted small">since {formatDateTime(st.started_at)}</span>}
        </div>
        <div className="session-stats">
          <Stat label="Bandwidth out" value={formatBitrate(st.total_bitrate_bps)} sub="all destinations" testId="total-bandwidth" />
          <Stat
            label="Live"
            value={st.streaming ? `${liveCount} / ${activeCount}` : '—'}
            sub="destinations"
            testId="live-count"
          />
          <Stat
            label="Input"
            value={input.input_state === 'live' && input.video ? `${input.video.width}×${input.video.height}` : input.input_state === 'live' ? 'Live' : 'No signal'}
            sub={input.input_state === 'live' ? `${input.fps ? `${Math.round(input.fps)} fps · ` : ''}${formatBitrate(input.bitrate_bps)}` : 'start your encoder'}
            testId="session-input"
          />
        </div>
        <div className="session-actions">
          {st.streaming ? (
            <button type="button" className="button button-danger" onClick={() => setConfirmStop(true)} disabled={busy !== null}>
              <Icon name="stop" /> Stop all
            </button>
          ) : (
            <button
              type="button"
              className="button button-live"
              disabled={busy !== null || enabled.length === 0}
              onClick={() =>
                act(
                  'start-all',
                  () => startStreaming(channel.id, enabled.map((d) => d.id)),
                  `Streaming to ${enabled.length} ${enabled.length === 1 ? 'destination' : 'destinations'}`,
                )
              }
            >
              <Icon name="play" /> Start all
            </button>
          )}
        </div>
      </section>

      {live.error && (
        <p className="notice notice-warn" role="status">
          Live status is not updating: {live.error.message} Retrying…
        </p>
      )}

      <div className="live-grid">
        <div className="live-side">
          <InputPanel input={input} />
          <SourcePanel channelId={channel.id} />
          <LivePreview channelId={channel.id} live={input.input_state === 'live'} />
        </div>

        <section className="live-destinations" aria-labelledby="dest-heading">
          <div className="section-head">
            <h2 id="dest-heading">Destinations</h2>
            <Link to="/stream/destinations" className="button button-ghost button-small">
              Manage
            </Link>
          </div>

          {enabled.length === 0 && cards.length === 0 ? (
            <EmptyState
              icon="send"
              title="No destinations yet"
              action={
                <Link to={`/stream/setup?channel=${channel.id}`} className="button button-primary">
                  Add destinations
                </Link>
              }
            >
              Add YouTube, X, LinkedIn or any RTMP server to send this channel to.
            </EmptyState>
          ) : st.streaming ? (
            <>
              <ul className="dest-cards" aria-label="Destinations in this session">
                {cards.map((c) => (
                  <DestinationCard
                    key={c.id}
                    card={c}
                    busy={busy === c.id}
                    onStop={() =>
                      act(c.id, async () => {
                        await stopDestination(channel.id, c.id);
                        markStopped(c.id, true);
                      }, `${c.name} stopped`)
                    }
                    onStart={() =>
                      act(c.id, async () => {
                        await startDestination(channel.id, c.id);
                        markStopped(c.id, false);
                      })
                    }
                  />
                ))}
              </ul>
              {others.filter((d) => !stoppedHere.has(d.id)).length > 0 && (
                <div className="others">
                  <h3 className="subhead">Add to this session</h3>
                  <ul className="other-list">
                    {others
                      .filter((d) => !stoppedHere.has(d.id))
                      .map((d) => (
                        <li key={d.id}>
                          <PlatformMark id={d.platform} size="small" />
                          <span className="grow">{d.name}</span>
                          <button
                            type="button"
                            className="button button-secondary button-small"
                            disabled={busy === d.id}
                            onClick={() => act(d.id, () => startDestination(channel.id, d.id), `${d.name} started`)}
                            aria-label={`Start ${d.name}`}
                          >
                            <Icon name="play" size={14} /> Start
                          </button>
                        </li>
                      ))}
                  </ul>
                </div>
              )}
            </>
          ) : (
            <form
              className="go-live card"
              onSubmit={(e) => {
                e.preventDefault();
                if (!chosen.length) return;
                void act(
                  'start',
                  () => startStreaming(channel.id, chosen.map((d) => d.id)),
                  `Streaming to ${chosen.length} ${chosen.length === 1 ? 'destination' : 'destinations'}`,
                );
              }}
            >
              <fieldset>
                <legend>Choose where to go live</legend>
                <ul className="pick-list">
                  {enabled.map((d) => (
                    <li key={d.id}>
                      <label className="check pick">
                        <input
                          type="checkbox"
                          checked={selected?.has(d.id) ?? false}
                          onChange={(e) =>
                            setSelected((s) => {
                              const n = new Set(s ?? []);
                              if (e.target.checked) n.add(d.id);
                              else n.delete(d.id);
                              return n;
                            })
                          }
                        />
                        <PlatformMark id={d.platform} size="small" />
                        <span className="grow">
                          {d.name}
                          <span className="muted small mono block">{d.rtmp_url}</span>
                        </span>
                      </label>
                    </li>
                  ))}
                </ul>
              </fieldset>
              <div className="form-actions">
                <button type="submit" className="button button-live" disabled={busy !== null || chosen.length === 0}>
                  <Icon name="play" /> Go live on {chosen.length} {chosen.length === 1 ? 'destination' : 'destinations'}
                </button>
              </div>
            </form>
          )}
        </section>
      </div>

      <Modal
        open={confirmStop}
        onClose={() => setConfirmStop(false)}
        title="Stop streaming?"
        footer={
          <>
            <button type="button" className="button button-ghost" onClick={() => setConfirmStop(false)}>
              Keep streaming
            </button>
            <button
              type="button"
              className="button button-danger"
              onClick={() => {
                setConfirmStop(false);
                void act('stop-all', () => stopStreaming(channel.id), 'Streaming stopped');
              }}
            >
              Stop all destinations
            </button>
          </>
        }
      >
        <p>
          Every destination of “{channel.name}” disconnects and the session ends. Your encoder can keep publishing;
          you can go live again at any time.
        </p>
      </Modal>

      <StreamKeyModal open={showKey} channel={channel} publishUrl={channel.publish_url} onClose={() => setShowKey(false)} />
    </div>
  );
}
