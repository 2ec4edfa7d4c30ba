import { useEffect, useRef, useState } from 'react';
import { refreshSession } from '../api/client';

/**
 * The server's event stream, `GET /api/v1/events` (WebSocket), shared by every screen.
 *
 * Protocol (crates/api/src/events.rs): the server greets with `{type:"hello"}`; the client sends
 * `{type:"subscribe", topics:[…]}` (`org`, `channel:{id}`, `camera:{id}`, `destination:{id}`,
 * `user:{id}`) and receives events `{type, topic, data, at, seq}`. After a reconnect the client
 * subscribes again and sends `{type:"resume", after: lastSeq}` to get what it missed; when the
 * server no longer has them it answers `{type:"resync"}` and screens reload their state.
 *
 * One socket per tab, opened on the first subscription and closed a while after the last one
 * goes; it reconnects with exponential backoff (0.5 s doubling to 15 s, with jitter), renewing
 * the session first when the socket could not open (an expired access token).
 */

export interface LiveEvent {
  /** `camera.status`, `source.failover`, `source.state`, `channel.input`, `destination.status`, … */
  type: string;
  topic: string;
  data: Record<string, unknown>;
  at: string;
  seq: number;
}

type Handler = (e: LiveEvent) => void;
type StateListener = (connected: boolean) => void;

/** A handler also hears this synthetic event when events were missed: reload the state. */
export const RESYNC = 'resync';

const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 15_000;
const IDLE_CLOSE_MS = 10_000;
const PING_MS = 25_000;

class EventClient {
  private ws: WebSocket | null = null;
  private handlers = new Map<string, Set<Handler>>();
  private stateListeners = new Set<StateListener>();
  private lastSeq = 0;
  private backoff = MIN_BACKOFF_MS;
  private reconnectTimer = 0;
  private idleTimer = 0;
  private pingTimer = 0;
  private opened = false;
  /** Presence this tab announced, per topic (`viewing` or `editing`), re-sent after a reconnect. */
  private presence = new Map<string, string>();
  connected = false;

  /** Calls `handler` for every event on `topics`; answers the unsubscribe function. */
  subscribe(topics: string[], handler: Handler): () => void {
    const added: string[] = [];
    for (const t of topics) {
      let set = this.handlers.get(t);
      if (!set) {
        set = new Set();
        this.handlers.set(t, set);
        added.push(t);
      }
      set.add(handler);
    }
    window.clearTimeout(this.idleTimer);
    if (!this.ws) this.connect();
    else if (added.length && this.ws.readyState === WebSocket.OPEN) this.send({ type: 'subscribe', topics: added });
    return () => {
      const gone: string[] = [];
      for (const t of topics) {
        const set = this.handlers.get(t);
        if (!set) continue;
        set.delete(handler);
        if (set.size === 0) {
          this.handlers.delete(t);
          gone.push(t);
        }
      }
      if (gone.length && this.ws?.readyState === WebSocket.OPEN) this.send({ type: 'unsubscribe', topics: gone });
      if (this.handlers.size === 0) {
        window.clearTimeout(this.idleTimer);
        this.idleTimer = window.setTimeout(() => this.close(), IDLE_CLOSE_MS);
      }
    };
  }

  /**
   * Announces this tab's presence on `topic` (`viewing`, `editing`), or ends it with `null`.
   * The server answers with a `presence` event on the topic listing everyone there.
   */
  setPresence(topic: string, state: 'viewing' | 'editing' | null) {
    if (state === null) {
      if (!this.presence.delete(topic)) return;
      if (this.ws?.readyState === WebSocket.OPEN) this.send({ type: 'presence', topic, state: 'left' });
      return;
    }
    if (this.presence.get(topic) === state) return;
    this.presence.set(topic, state);
    if (this.ws?.readyState === WebSocket.OPEN) this.send({ type: 'presence', topic, state });
  }

  onState(fn: StateListener): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  private setConnected(v: boolean) {
    if (this.connected === v) return;
    this.connected = v;
    for (const fn of this.stateListeners) fn(v);
  }

  private send(msg: unknown) {
    try {
      this.ws?.send(JSON.stringify(msg));
    } catch {
      // the close handler reconnects
    }
  }

  private connect() {
    window.clearTimeout(this.reconnectTimer);
    const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws: WebSocket;
    try {
      ws = new WebSocket(`${proto}//${window.location.host}/api/v1/events`);
    } catch {
      this.scheduleReconnect(false);
      return;
    }
    this.ws = ws;
    this.opened = false;
    ws.onopen = () => {
      this.opened = true;
      this.backoff = MIN_BACKOFF_MS;
      this.setConnected(true);
      const topics = [...this.handlers.keys()];
      if (topics.length) this.send({ type: 'subscribe', topics });
      if (this.lastSeq > 0) this.send({ type: 'resume', after: this.lastSeq });
      for (const [topic, state] of this.presence) this.send({ type: 'presence', topic, state });
      window.clearInterval(this.pingTimer);
      this.pingTimer = window.setInterval(() => this.send({ type: 'ping' }), PING_MS);
    };
    ws.onmessage = (m) => {
      let msg: Partial<LiveEvent> & { type?: string };
      try {
        msg = JSON.parse(String(m.data));
      } catch {
        return;
      }
      if (msg.type === RESYNC) {
        this.dispatchAll({ type: RESYNC, topic: '*', data: {}, at: new Date().toISOString(), seq: this.lastSeq });
        return;
      }
      if (typeof msg.seq !== 'number' || typeof msg.topic !== 'string') return; // hello, subscribed, pong…
      if (msg.seq <= this.lastSeq) return; // already seen (a resume can repeat)
      this.lastSeq = msg.seq;
      const set = this.handlers.get(msg.topic);
      if (!set) return;
      for (const h of [...set]) h(msg as LiveEvent);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      window.clearInterval(this.pingTimer);
      this.setConnected(false);
      if (this.handlers.size > 0) this.scheduleReconnect(!this.opened);
    };
  }

  private dispatchAll(e: LiveEvent) {
    const seen = new Set<Handler>();
    for (const set of this.handlers.values()) {
      for (const h of set) {
        if (seen.has(h)) continue;
        seen.add(h);
        h(e);
      }
    }
  }

  private scheduleReconnect(neverOpened: boolean) {
    const delay = this.backoff * (0.75 + Math.random() * 0.5);
    this.backoff = Math.min(MAX_BACKOFF_MS, this.backoff * 2);
    this.reconnectTimer = window.setTimeout(async () => {
      // A socket that never opened was most likely refused (401): renew the session first.
      if (neverOpened) await refreshSession();
      if (this.handlers.size > 0 && !this.ws) this.connect();
    }, delay);
  }

  private close() {
    window.clearTimeout(this.reconnectTimer);
    window.clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.setConnected(false);
  }
}

export const liveEvents = new EventClient();

/**
 * Subscribes the component to `topics` while mounted. The handler may change between renders
 * without resubscribing; the topic list is compared by value.
 */
export function useEvents(topics: readonly string[], handler: Handler): void {
  const ref = useRef(handler);
  ref.current = handler;
  const key = [...topics].sort().join('\n');
  useEffect(() => {
    if (!key) return;
    return liveEvents.subscribe(key.split('\n'), (e) => ref.current(e));
  }, [key]);
}

/** Whether the event stream is connected now (for a "live" indicator and polling fallbacks). */
export function useEventsConnected(): boolean {
  const [connected, setConnected] = useState(liveEvents.connected);
  useEffect(() => {
    setConnected(liveEvents.connected);
    return liveEvents.onState(setConnected);
  }, []);
  return connected;
}
