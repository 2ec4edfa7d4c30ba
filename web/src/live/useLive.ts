import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError } from '../api/client';
import { getStreamingStatus } from '../api/endpoints';
import type { StreamingStatus } from '../api/types';
import { useEvents, useEventsConnected } from './events';

/** How often the status is read while the page is visible and the event stream is down. */
export const LIVE_POLL_MS = 1500;
/** With the event stream up, state changes arrive as events; this tick only moves the figures. */
export const LIVE_POLL_WITH_EVENTS_MS = 3000;

export interface Live {
  status: StreamingStatus | null;
  /** The last failure, cleared by the next success. */
  error: ApiError | Error | null;
  /** `performance.now()` of the last answer, to tick clocks between answers. */
  receivedAt: number;
  /** Ask now (after an action), without waiting for the next tick. */
  refresh: () => Promise<void>;
}

/**
 * The live state of one channel's streaming session.
 *
 * Reads `GET /channels/{id}/streaming/status` at once whenever an event about the channel arrives
 * on the `/api/v1/events` WebSocket (input up/down, a destination's state, a failover, the
 * session starting or stopping), and on a slower tick for the figures (bitrate, clock) that have
 * no events. While the socket is down, the tick is the fallback and runs every 1.5 s.
 */
export function useLive(channelId: string | undefined): Live {
  const [status, setStatus] = useState<StreamingStatus | null>(null);
  const [error, setError] = useState<ApiError | Error | null>(null);
  const [receivedAt, setReceivedAt] = useState(0);
  const inflight = useRef<AbortController | null>(null);
  const alive = useRef(true);
  const connected = useEventsConnected();
  const connectedRef = useRef(connected);
  connectedRef.current = connected;

  const refresh = useCallback(async () => {
    if (!channelId) return;
    inflight.current?.abort();
    const ctrl = new AbortController();
    inflight.current = ctrl;
    try {
      const st = await getStreamingStatus(channelId, ctrl.signal);
      if (!alive.current || ctrl.signal.aborted) return;
      setStatus(st);
      setError(null);
      setReceivedAt(performance.now());
    } catch (err) {
      if (ctrl.signal.aborted || !alive.current) return;
      setError(err instanceof Error ? err : new Error(String(err)));
    } finally {
      if (inflight.current === ctrl) inflight.current = null;
    }
  }, [channelId]);

  useEffect(() => {
    alive.current = true;
    setStatus(null);
    setError(null);
    if (!channelId) return;
    let timer = 0;
    const tick = async () => {
      if (document.visibilityState === 'visible') await refresh();
      if (alive.current) timer = window.setTimeout(tick, connectedRef.current ? LIVE_POLL_WITH_EVENTS_MS : LIVE_POLL_MS);
    };
    void tick();
    const onVisible = () => {
      if (document.visibilityState === 'visible') void refresh();
    };
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      alive.current = false;
      window.clearTimeout(timer);
      inflight.current?.abort();
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, [channelId, refresh]);

  useEvents(channelId ? [`channel:${channelId}`] : [], () => {
    void refresh();
  });

  return { status, error, receivedAt, refresh };
}

/** A clock that ticks every second from a server figure taken at `receivedAt`. */
export function useTicking(seconds: number | null | undefined, receivedAt: number): number | null {
  const [now, setNow] = useState(() => performance.now());
  useEffect(() => {
    if (seconds == null) return;
    const t = window.setInterval(() => setNow(performance.now()), 1000);
    return () => window.clearInterval(t);
  }, [seconds]);
  if (seconds == null) return null;
  return seconds + Math.max(0, (now - receivedAt) / 1000);
}
