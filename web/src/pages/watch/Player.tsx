import { useEffect, useRef, useState, type FormEvent } from 'react';
import { Link, useParams } from 'react-router';
import { ApiError } from '../../api/client';
import { useSession } from '../../auth/session';
import { CopyButton } from '../../components/ui';
import { useDocumentTitle } from '../../useDocumentTitle';
import { watchApi, type Stream } from './api';
import { ChatPanel } from './ChatPanel';

type Refusal = { code: string; detail: string } | null;

interface Level {
  index: number;
  label: string;
}

/** `/watch/{id}`: the player (hls.js with quality selection), save, share, chat. */
export function WatchPlayerPage() {
  const { streamId = '' } = useParams();
  const { me } = useSession();
  const [stream, setStream] = useState<Stream | null>(null);
  const [src, setSrc] = useState<string | null>(null);
  const [refusal, setRefusal] = useState<Refusal>(null);
  const [error, setError] = useState<string | null>(null);
  const [pin, setPin] = useState('');
  const [saved, setSaved] = useState(false);
  useDocumentTitle(stream?.title ?? 'Watch');

  const ask = (withPin?: string) => {
    setRefusal(null);
    watchApi.playback(streamId, withPin).then(
      (g) => setSrc(g.hls_url),
      (e: unknown) => {
        if (e instanceof ApiError && e.status === 403) setRefusal({ code: e.code ?? 'forbidden', detail: e.message });
        else setError(e instanceof Error ? e.message : String(e));
      },
    );
  };

  useEffect(() => {
    setSrc(null);
    watchApi.stream(streamId).then(setStream, (e: unknown) => setError(e instanceof Error ? e.message : String(e)));
    ask();
    if (me) watchApi.saved().then((l) => setSaved(l.items.some((i) => i.stream.id === streamId)), () => {});
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [streamId, me]);

  const toggleSave = () => {
    const op = saved ? watchApi.unsave(streamId) : watchApi.save(streamId);
    op.then(() => setSaved(!saved), (e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  };

  const submitPin = (e: FormEvent) => {
    e.preventDefault();
    ask(pin);
  };

  const next = `/watch/${streamId}`;
  return (
    <div className="watch-player-page">
      <p>
        <Link to="/watch" className="back-link">
          ← All streams
        </Link>
      </p>
      {error && <p className="notice notice-error">{error}</p>}
      <div className="watch-player-layout">
        <div className="watch-player-main">
          {src ? (
            <Video src={src} streamId={streamId} live={stream?.live ?? true} />
          ) : refusal?.code === 'upgrade_required' ? (
            <div className="watch-gate notice notice-warn" data-testid="upgrade-prompt" role="alert">
              <p>{refusal.detail}</p>
              <Link
                to={me ? `/watch/upgrade?next=${encodeURIComponent(next)}` : `/login?next=${encodeURIComponent(`/watch/upgrade?next=${next}`)}`}
                className="button button-primary"
              >
                {me ? 'Upgrade to watch' : 'Sign in to upgrade'}
              </Link>
            </div>
          ) : refusal?.code === 'parental_pin_required' ? (
            <form className="watch-gate notice notice-warn" onSubmit={submitPin}>
              <p>{refusal.detail}</p>
              <label htmlFor="pin">Parental PIN</label>
              <input id="pin" inputMode="numeric" value={pin} onChange={(e) => setPin(e.target.value)} />
              <button type="submit" className="button button-primary">
                Unlock
              </button>
            </form>
          ) : refusal ? (
            <p className="notice notice-error">{refusal.detail}</p>
          ) : (
            <p className="muted">Loading…</p>
          )}
          {stream && (
            <section className="watch-info">
              <h1>
                {stream.title} {stream.live && <span className="badge badge-live">Live</span>}
              </h1>
              <p className="small muted">
                {stream.creator.name || 'Unknown creator'}
                {stream.category ? ` · ${stream.category.name}` : ''} · {stream.viewer_count} watching
              </p>
              <div className="row-actions">
                {me && (
                  <button type="button" className="button button-secondary" onClick={toggleSave} aria-pressed={saved}>
                    {saved ? 'Saved' : 'Save'}
                  </button>
                )}
                {me && stream.creator.id && (
                  <button
                    type="button"
                    className="button button-secondary"
                    onClick={() => watchApi.follow(stream.creator.id ?? '').catch(() => {})}
                  >
                    Follow {stream.creator.name}
                  </button>
                )}
                <CopyButton text={`${window.location.origin}/watch/${stream.id}`} label="Share link" />
              </div>
              {stream.description && <p>{stream.description}</p>}
              {stream.tags.length > 0 && (
                <ul className="tags">
                  {stream.tags.map((t) => (
                    <li key={t} className="badge badge-neutral">
                      {t}
                    </li>
                  ))}
                </ul>
              )}
            </section>
          )}
        </div>
        <ChatPanel streamId={streamId} />
      </div>
    </div>
  );
}

/** hls.js with the master playlist's levels offered as qualities; a viewing session with heartbeats. */
function Video({ src, streamId, live }: { src: string; streamId: string; live: boolean }) {
  const ref = useRef<HTMLVideoElement>(null);
  const hlsRef = useRef<{ currentLevel: number; destroy(): void } | null>(null);
  const [levels, setLevels] = useState<Level[]>([]);
  const [level, setLevel] = useState(-1);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const video = ref.current;
    if (!video) return;
    let destroyed = false;
    let session: string | null = null;
    let timer: number | undefined;
    const startSession = () => {
      if (session || destroyed) return;
      watchApi.startViewing(streamId).then((s) => {
        session = s.session_id;
        timer = window.setInterval(() => {
          if (session) void watchApi.progress(session, video.currentTime).catch(() => {});
        }, s.heartbeat_seconds * 1000);
      }, () => {});
    };
    video.addEventListener('playing', startSession);
    (async () => {
      const { default: Hls } = await import('hls.js');
      if (destroyed) return;
      if (Hls.isSupported()) {
        const h = new Hls({ lowLatencyMode: live, liveSyncDurationCount: 2 });
        hlsRef.current = h;
        (window as unknown as { __watchHls?: unknown }).__watchHls = h;
        h.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
          setLevels(
            data.levels.map((l, index) => ({
              index,
              label: l.height ? `${l.height}p` : l.name || `${Math.round(l.bitrate / 1000)} kb/s`,
            })),
          );
          void video.play().catch(() => {});
        });
        h.on(Hls.Events.ERROR, (_e, data) => {
          if (data.fatal) setError(live ? 'The live picture stopped. It comes back when the input does.' : `Playback failed (${data.details}).`);
        });
        h.loadSource(src);
        h.attachMedia(video);
      } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
        video.src = src;
        video.addEventListener('loadedmetadata', () => void video.play().catch(() => {}), { once: true });
      } else {
        setError('This browser cannot play HLS video.');
      }
    })().catch(() => setError('The player could not be loaded.'));
    return () => {
      destroyed = true;
      window.clearInterval(timer);
      if (session) void watchApi.end(session, video.currentTime).catch(() => {});
      video.removeEventListener('playing', startSession);
      hlsRef.current?.destroy();
      hlsRef.current = null;
      video.removeAttribute('src');
      video.load();
    };
  }, [src, streamId, live]);

  const choose = (i: number) => {
    setLevel(i);
    if (hlsRef.current) hlsRef.current.currentLevel = i;
  };

  return (
    <div className="player watch-video">
      <video ref={ref} controls muted playsInline autoPlay aria-label="Stream" data-testid="watch-video" />
      {levels.length > 0 && (
        <label className="watch-quality small">
          Quality{' '}
          <select value={level} onChange={(e) => choose(Number(e.target.value))} data-testid="quality">
            <option value={-1}>Auto</option>
            {levels.map((l) => (
              <option key={l.index} value={l.index}>
                {l.label}
              </option>
            ))}
          </select>
        </label>
      )}
      {error && (
        <p className="player-error small" role="status">
          {error}
        </p>
      )}
    </div>
  );
}
