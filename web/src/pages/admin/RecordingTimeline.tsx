import { useEffect, useState } from 'react';
import { listRecordings } from '../../api/endpoints';
import type { Recording } from '../../api/types';
import { HlsPlayer } from '../../components/HlsPlayer';
import { Modal } from '../../components/ui';
import { formatDateTime, formatDuration, formatTime } from '../../lib/format';

const DAY = 86_400_000;

/**
 * The last 24 hours of a channel's recordings on one line: each file a segment at its time, a
 * click plays it. Read again every `refreshMs`.
 */
export function RecordingTimeline({ channelId, refreshMs = 10_000 }: { channelId: string; refreshMs?: number }) {
  const [items, setItems] = useState<Recording[]>([]);
  const [now, setNow] = useState(() => Date.now());
  const [playing, setPlaying] = useState<Recording | null>(null);

  useEffect(() => {
    let alive = true;
    const load = () => {
      const to = Date.now();
      listRecordings({ channel_id: channelId, from: new Date(to - DAY).toISOString(), limit: 200 })
        .then((l) => {
          if (!alive) return;
          setItems(l.items);
          setNow(Date.now());
        })
        .catch(() => {});
    };
    load();
    const t = window.setInterval(() => document.visibilityState === 'visible' && load(), refreshMs);
    return () => {
      alive = false;
      window.clearInterval(t);
    };
  }, [channelId, refreshMs]);

  const start = now - DAY;
  const pos = (ms: number) => Math.min(100, Math.max(0, ((ms - start) / DAY) * 100));
  const ticks = [0, 6, 12, 18, 24].map((h) => start + h * 3_600_000);

  return (
    <div className="timeline-24h" data-testid="recording-timeline">
      <div className="timeline-track" role="list" aria-label="Recordings in the last 24 hours">
        {items.map((r) => {
          const a = new Date(r.started_at).getTime();
          const b = r.ended_at ? new Date(r.ended_at).getTime() : a + r.duration_seconds * 1000;
          const width = Math.max(0.6, pos(Math.max(b, a + 1000)) - pos(a));
          // A file that ends now stays inside the track.
          const left = Math.min(pos(a), 100 - width);
          return (
            <button
              key={r.id}
              type="button"
              role="listitem"
              className={`timeline-seg status-${r.status}`}
              style={{ left: `${left}%`, width: `${width}%` }}
              title={`${formatDateTime(r.started_at)} · ${formatDuration(r.duration_seconds)}`}
              aria-label={`Play the recording of ${formatDateTime(r.started_at)}, ${formatDuration(r.duration_seconds)}`}
              onClick={() => setPlaying(r)}
            />
          );
        })}
      </div>
      <div className="timeline-ticks" aria-hidden="true">
        {ticks.map((t, i) => (
          <span key={t} style={{ left: `${i * 25}%` }}>
            {i === 4 ? 'now' : formatTime(new Date(t).toISOString()).replace(/:\d\d(?=\s|$)/, '')}
          </span>
        ))}
      </div>
      {items.length === 0 && <p className="muted small">Nothing recorded in the last 24 hours.</p>}
      <Modal open={playing !== null} wide title={playing ? `Recording of ${formatDateTime(playing.started_at)}` : ''} onClose={() => setPlaying(null)}>
        {playing && <HlsPlayer src={playing.playlist_url} label="Recording" testId="timeline-player" />}
      </Modal>
    </div>
  );
}
