import { useEffect, useRef, useState } from 'react';

/**
 * A video element playing an HLS playlist: hls.js (loaded on first use) where Media Source
 * Extensions exist, the browser's own HLS elsewhere (Safari, iOS). Requests go to this origin
 * with the session cookie, so private recordings play for whoever may read them.
 */
export function HlsPlayer({
  src,
  label,
  live,
  autoPlay = true,
  testId,
}: {
  src: string | null;
  label: string;
  live?: boolean;
  autoPlay?: boolean;
  testId?: string;
}) {
  const ref = useRef<HTMLVideoElement>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const video = ref.current;
    if (!video || !src) return;
    setError(null);
    let destroyed = false;
    let hls: { destroy(): void } | null = null;
    const play = () => {
      if (autoPlay) void video.play().catch(() => {});
    };
    (async () => {
      const { default: Hls } = await import('hls.js');
      if (destroyed) return;
      if (Hls.isSupported()) {
        const h = new Hls({ lowLatencyMode: Boolean(live), xhrSetup: (xhr) => {
            xhr.withCredentials = true;
          } });
        hls = h;
        h.on(Hls.Events.MANIFEST_PARSED, play);
        h.on(Hls.Events.ERROR, (_e, data) => {
          if (data.fatal) setError(live ? 'The live picture stopped. It comes back when the input does.' : `Playback failed (${data.details}).`);
        });
        h.loadSource(src);
        h.attachMedia(video);
      } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
        video.src = src;
        video.addEventListener('loadedmetadata', play, { once: true });
      } else {
        setError('This browser cannot play HLS video.');
      }
    })().catch(() => setError('The player could not be loaded.'));
    return () => {
      destroyed = true;
      hls?.destroy();
      video.removeAttribute('src');
      video.load();
    };
  }, [src, live, autoPlay]);

  return (
    <div className="player">
      <video ref={ref} controls muted playsInline aria-label={label} data-testid={testId} />
      {error && (
        <p className="player-error small" role="status">
          {error}
        </p>
      )}
    </div>
  );
}
