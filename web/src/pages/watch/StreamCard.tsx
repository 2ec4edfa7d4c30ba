import { Link } from 'react-router';
import type { Stream } from './api';

/** One stream in a grid: thumbnail (while live), title, creator, level, viewers. */
export function StreamCard({ stream, reason }: { stream: Stream; reason?: string }) {
  return (
    <li className="watch-card" data-testid="stream-card" data-stream-id={stream.id}>
      <Link to={`/watch/${stream.id}`} className="watch-card-link">
        <span className="watch-thumb">
          {stream.live ? <img src={stream.thumbnail_url} alt="" loading="lazy" /> : <span className="watch-thumb-off">Offline</span>}
          {stream.live && <span className="badge badge-live watch-live">Live · {stream.viewer_count}</span>}
          {stream.access_level !== 'public' && <span className="badge badge-warn watch-level">{stream.access_level}</span>}
        </span>
        <span className="watch-card-title">{stream.title}</span>
        <span className="watch-card-meta small muted">
          {stream.creator.name || 'Unknown creator'}
          {stream.category ? ` · ${stream.category.name}` : ''}
        </span>
        {reason && <span className="watch-card-reason small">{reason}</span>}
      </Link>
    </li>
  );
}

export function StreamGrid({ streams, empty }: { streams: { stream: Stream; reason?: string }[]; empty: string }) {
  if (streams.length === 0) return <p className="muted small">{empty}</p>;
  return (
    <ul className="watch-grid">
      {streams.map((s) => (
        <StreamCard key={s.stream.id} stream={s.stream} {...(s.reason ? { reason: s.reason } : {})} />
      ))}
    </ul>
  );
}
