import { useCallback, useEffect, useState } from 'react';
import { createPlayToken, getSourcesStatus, switchSource } from '../../api/endpoints';
import type { SourcesStatus } from '../../api/types';
import { HlsPlayer } from '../../components/HlsPlayer';
import { Icon } from '../../components/Icons';
import { useToast } from '../../components/Toasts';
import { useEvents } from '../../live/events';

const ROLE: Record<string, string> = { primary: 'Primary', secondary: 'Backup' };

/**
 * Which input is on air (primary or backup) with a switch, for channels with a backup input.
 * Moves on the channel's `source.*` events; figures are read every few seconds.
 */
export function SourcePanel({ channelId }: { channelId: string }) {
  const toast = useToast();
  const [st, setSt] = useState<SourcesStatus | null>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    try {
      setSt(await getSourcesStatus(channelId));
    } catch {
      // the next tick or event tries again
    }
  }, [channelId]);

  useEffect(() => {
    void load();
    const t = window.setInterval(() => {
      if (document.visibilityState === 'visible') void load();
    }, 4000);
    return () => window.clearInterval(t);
  }, [load]);

  useEvents([`channel:${channelId}`], (e) => {
    if (e.type.startsWith('source.') || e.type === 'channel.input' || e.type === 'resync') void load();
  });

  if (!st || st.redundancy_mode === 'single' || st.inputs.length < 2) return null;
  const active = st.active ?? null;
  const other = active === 'primary' ? 'secondary' : 'primary';
  const otherUp = st.inputs.find((i) => i.role === other)?.connected ?? false;

  async function flip() {
    setBusy(true);
    try {
      setSt(await switchSource(channelId, other));
    } catch (err) {
      toast.error(err, 'The switch was refused');
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card" aria-labelledby="source-heading" data-testid="source-panel">
      <div className="card-head">
        <h2 id="source-heading">Source</h2>
        <span className="badge badge-live" data-testid="live-source" data-active={active ?? 'none'}>
          {st.fill_since ? 'Fill signal' : active ? `${ROLE[active] ?? active} on air` : 'No input'}
        </span>
      </div>
      <ul className="source-mini">
        {st.inputs.map((i) => (
          <li key={i.role}>
            <span>{ROLE[i.role] ?? i.role}</span>
            <span className="muted small">{i.connected ? `${(i.bitrate_bps / 1e6).toFixed(1)} Mb/s · ${i.fps.toFixed(0)} fps` : 'not connected'}</span>
          </li>
        ))}
      </ul>
      <button type="button" className="button button-secondary button-small button-block" disabled={busy || !active || !otherUp} onClick={flip}>
        <Icon name="split" size={16} /> Switch to {(ROLE[other] ?? other).toLowerCase()}
      </button>
    </section>
  );
}

/** The channel as viewers get it (HLS), on demand: the player loads only when asked for. */
export function LivePreview({ channelId, live }: { channelId: string; live: boolean }) {
  const toast = useToast();
  const [src, setSrc] = useState<string | null>(null);
  const [open, setOpen] = useState(false);

  useEffect(() => {
    if (!open || !live) {
      setSrc(null);
      return;
    }
    let cancelled = false;
    createPlayToken(channelId)
      .then((t) => !cancelled && setSrc(`/hls/${encodeURIComponent(channelId)}/index.m3u8?token=${encodeURIComponent(t.token)}`))
      .catch((err) => toast.error(err, 'The preview is not available'));
    return () => {
      cancelled = true;
    };
  }, [open, live, channelId, toast]);

  return (
    <section className="card" aria-labelledby="preview-heading">
      <div className="card-head">
        <h2 id="preview-heading">Preview</h2>
        <button type="button" className="button button-ghost button-small" aria-pressed={open} onClick={() => setOpen((v) => !v)} disabled={!live}>
          {open ? 'Hide' : 'Show'}
        </button>
      </div>
      {open && src ? (
        <HlsPlayer src={src} label="Live preview of the channel" live testId="live-preview" />
      ) : (
        <p className="muted small">{live ? 'Watch the channel as viewers get it (HLS, a few seconds behind).' : 'The preview starts with the input.'}</p>
      )}
    </section>
  );
}
