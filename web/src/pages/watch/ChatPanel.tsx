import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { refreshSession } from '../../api/client';
import {
  REPORT_REASONS,
  chatHistory,
  deleteChatMessage,
  reportContent,
  setSlowMode,
  timeoutChatUser,
  type ChatMessage,
} from '../../api/social';
import { errorText } from '../../components/Toasts';
import { Modal } from '../../components/ui';

/**
 * Live chat of a stream (crates/api/src/social.rs): history, then the WebSocket at
 * `/api/v1/streams/{id}/chat/ws`. Anyone reads; signed-in viewers post; moderators delete
 * messages and time users out from the message's hover controls. Messages are rendered as text.
 */

/** Messages kept on screen. */
const KEEP = 300;
const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 15_000;

interface Hello {
  user: { id: string; display_name: string } | null;
  can_post: boolean;
  can_moderate: boolean;
  slow_mode_seconds: number;
  max_chars: number;
  auth_error?: string | null;
}

type Notice = { kind: 'error' | 'info'; text: string } | null;

function socketUrl(streamId: string): string {
  const proto = window.location.protocol === 'https:' ? 'wss' : 'ws';
  return `${proto}://${window.location.host}/api/v1/streams/${encodeURIComponent(streamId)}/chat/ws`;
}

function time(at: string): string {
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export function ChatPanel({ streamId }: { streamId: string }) {
  const [messages, setMessages] = useState<ChatMessage[]>([]);
  const [hello, setHello] = useState<Hello | null>(null);
  const [connected, setConnected] = useState(false);
  const [notice, setNotice] = useState<Notice>(null);
  const [draft, setDraft] = useState('');
  const [slow, setSlow] = useState(0);
  const [reporting, setReporting] = useState<ChatMessage | null>(null);
  const ws = useRef<WebSocket | null>(null);
  const me = useRef<string | null>(null);
  const list = useRef<HTMLOListElement>(null);

  const add = useCallback((m: ChatMessage) => {
    setMessages((prev) => (prev.some((p) => p.id === m.id) ? prev : [...prev, m].slice(-KEEP)));
  }, []);

  useEffect(() => {
    let closed = false;
    let backoff = MIN_BACKOFF_MS;
    let timer = 0;
    let refreshed = false;
    const ctl = new AbortController();

    chatHistory(streamId, ctl.signal)
      .then((h) => {
        setMessages((prev) => {
          const seen = new Set(prev.map((m) => m.id));
          return [...h.items.filter((m) => !seen.has(m.id)), ...prev].slice(-KEEP);
        });
        setSlow(h.slow_mode_seconds);
      })
      .catch((err) => {
        if (!ctl.signal.aborted) setNotice({ kind: 'error', text: errorText(err) });
      });

    const connect = () => {
      if (closed) return;
      const socket = new WebSocket(socketUrl(streamId));
      ws.current = socket;
      socket.onopen = () => {
        backoff = MIN_BACKOFF_MS;
        setConnected(true);
      };
      socket.onmessage = (ev) => {
        let f: Record<string, unknown>;
        try {
          f = JSON.parse(String(ev.data)) as Record<string, unknown>;
        } catch {
          return;
        }
        switch (f.type) {
          case 'hello': {
            const h = f as unknown as Hello;
            // An expired access cookie: renew the session once and reconnect signed in.
            if (h.auth_error && !refreshed) {
              refreshed = true;
              void refreshSession().then((ok) => {
                if (ok) socket.close(4000, 'reconnecting after a session refresh');
              });
            }
            me.current = h.user?.id ?? null;
            setHello(h);
            setSlow(h.slow_mode_seconds);
            break;
          }
          case 'message':
            add(f.message as ChatMessage);
            break;
          case 'deleted':
            setMessages((prev) => prev.filter((m) => m.id !== f.id));
            break;
          case 'timeout':
            if (f.user_id === me.current) {
              setNotice({ kind: 'error', text: `You were timed out for ${String(f.minutes)} min by a moderator.` });
            }
            break;
          case 'banned':
            if (f.user_id === me.current) setNotice({ kind: 'error', text: 'You were banned from this chat.' });
            break;
          case 'slow_mode':
            setSlow(Number(f.seconds) || 0);
            setNotice({
              kind: 'info',
              text: Number(f.seconds) > 0 ? `Slow mode is on: one message every ${String(f.seconds)} s.` : 'Slow mode is off.',
            });
            break;
          case 'sent':
            setDraft('');
            setNotice(null);
            break;
          case 'error':
            setNotice({ kind: 'error', text: String(f.detail ?? f.code) });
            break;
        }
      };
      socket.onclose = (ev) => {
        setConnected(false);
        if (ws.current === socket) ws.current = null;
        if (closed) return;
        if (ev.code === 4008) setNotice({ kind: 'error', text: 'The chat could not keep up with this connection; reconnecting…' });
        const wait = ev.code === 4000 ? 0 : backoff + Math.random() * 250;
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        timer = window.setTimeout(connect, wait);
      };
    };
    connect();
    return () => {
      closed = true;
      ctl.abort();
      window.clearTimeout(timer);
      ws.current?.close(1000, 'leaving');
      ws.current = null;
    };
  }, [streamId, add]);

  // Follow the newest message.
  useEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [messages]);

  const send = (e: FormEvent) => {
    e.preventDefault();
    const body = draft.trim();
    if (!body || !ws.current || ws.current.readyState !== WebSocket.OPEN) return;
    ws.current.send(JSON.stringify({ type: 'send', body }));
  };

  const moderate = async (what: () => Promise<unknown>, done: string) => {
    try {
      await what();
      setNotice({ kind: 'info', text: done });
    } catch (err) {
      setNotice({ kind: 'error', text: errorText(err) });
    }
  };

  const canModerate = hello?.can_moderate ?? false;
  const maxChars = hello?.max_chars ?? 500;

  return (
    <section className="chat-panel" aria-label="Live chat" data-testid="chat-panel" data-connected={connected}>
      <header className="chat-head">
        <h2>Live chat</h2>
        <span className="chat-state">
          {connected ? 'connected' : 'connecting…'}
          {slow > 0 && <span className="chat-slow" data-testid="chat-slow-mode"> · slow mode {slow} s</span>}
        </span>
      </header>
      {canModerate && (
        <div className="chat-modbar">
          <label>
            Slow mode{' '}
            <select
              aria-label="Slow mode"
              value={String(slow)}
              onChange={(e) => {
                const s = Number(e.target.value);
                void moderate(() => setSlowMode(streamId, s), s > 0 ? `Slow mode set to ${s} s.` : 'Slow mode off.');
              }}
            >
              {[0, 5, 10, 30, 60, 120].map((s) => (
                <option key={s} value={s}>
                  {s === 0 ? 'off' : `${s} s`}
                </option>
              ))}
            </select>
          </label>
        </div>
      )}
      <ol className="chat-list" ref={list} aria-live="polite">
        {messages.length === 0 && <li className="chat-empty">No messages yet.</li>}
        {messages.map((m) => (
          <li key={m.id} className="chat-message" data-testid="chat-message" data-id={m.id} data-user={m.user_id}>
            <span className="chat-time">{time(m.created_at)}</span> <span className="chat-name">{m.display_name}</span>
            <span className="chat-sep">: </span>
            {/* Text only: React escapes it, and nothing here sets inner HTML. */}
            <span className="chat-body">{m.body}</span>
            <span className="chat-actions">
              {hello?.user && m.user_id !== hello.user.id && (
                <button type="button" className="chat-action" onClick={() => setReporting(m)}>
                  Report
                </button>
              )}
              {canModerate && (
                <>
                  <button
                    type="button"
                    className="chat-action"
                    onClick={() => void moderate(() => deleteChatMessage(streamId, m.id), 'Message deleted.')}
                  >
                    Delete
                  </button>
                  {m.user_id !== hello?.user?.id && (
                    <button
                      type="button"
                      className="chat-action"
                      onClick={() =>
                        void moderate(
                          () => timeoutChatUser(streamId, m.user_id, 5, 'timed out from the chat'),
                          `${m.display_name} is timed out for 5 min.`,
                        )
                      }
                    >
                      Time out 5 min
                    </button>
                  )}
                </>
              )}
            </span>
          </li>
        ))}
      </ol>
      {notice && (
        <p className={`chat-notice chat-notice-${notice.kind}`} role={notice.kind === 'error' ? 'alert' : 'status'} data-testid="chat-feedback">
          {notice.text}
        </p>
      )}
      {hello?.can_post ? (
        <form className="chat-composer" onSubmit={send}>
          <input
            aria-label="Chat message"
            placeholder="Type your message…"
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            autoComplete="off"
          />
          <span className={`chat-count${draft.length > maxChars ? ' chat-count-over' : ''}`}>
            {draft.length}/{maxChars}
          </span>
          <button type="submit" className="button button-primary" disabled={!connected || !draft.trim()}>
            Send
          </button>
        </form>
      ) : (
        <p className="chat-signin">
          <Link to={`/login?next=${encodeURIComponent(window.location.pathname)}`}>Sign in</Link> to chat.
        </p>
      )}
      <ReportDialog message={reporting} onClose={() => setReporting(null)} onDone={(t) => setNotice({ kind: 'info', text: t })} />
    </section>
  );
}

function ReportDialog({
  message,
  onClose,
  onDone,
}: {
  message: ChatMessage | null;
  onClose: () => void;
  onDone: (text: string) => void;
}) {
  const [reason, setReason] = useState<string>('spam');
  const [details, setDetails] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    setReason('spam');
    setDetails('');
    setError(null);
  }, [message]);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!message) return;
    setBusy(true);
    try {
      await reportContent({ target_type: 'message', target_id: message.id, reason, details });
      onDone('Thanks: the moderators will look at your report.');
      onClose();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal open={message !== null} title="Report this message" onClose={onClose}>
      {message && (
        <form onSubmit={(e) => void submit(e)} className="chat-report">
          <blockquote className="chat-report-quote">
            <strong>{message.display_name}</strong>: {message.body}
          </blockquote>
          <label>
            Reason{' '}
            <select aria-label="Reason" value={reason} onChange={(e) => setReason(e.target.value)}>
              {REPORT_REASONS.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </label>
          <label>
            Details (optional)
            <textarea aria-label="Details" value={details} maxLength={1000} onChange={(e) => setDetails(e.target.value)} />
          </label>
          {error && <p role="alert">{error}</p>}
          <button type="submit" className="button button-primary" disabled={busy}>
            Send report
          </button>
        </form>
      )}
    </Modal>
  );
}
