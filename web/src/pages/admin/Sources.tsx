import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { ApiError } from '../../api/client';
import { getChannel, getSourcesConfig, getSourcesStatus, listChannels, putSourcesConfig, switchSource } from '../../api/endpoints';
import type { Channel, InputStatus, SourcesConfig, SourcesConfigBody, SourcesStatus, SourceStatus, SourceView } from '../../api/types';
import { Loading } from '../../auth/RequireAuth';
import { Field, useFieldErrors } from '../../components/Form';
import { Icon } from '../../components/Icons';
import { useToast } from '../../components/Toasts';
import { CopyField, EmptyState, Modal, PageHeader } from '../../components/ui';
import { formatBitrate, formatTime, humanize } from '../../lib/format';
import { useEvents, useEventsConnected } from '../../live/events';
import { useDocumentTitle } from '../../useDocumentTitle';

/** How often input figures (bitrate, fps) are read; state changes arrive as events. */
const FIGURES_MS = 2000;

const ROLE_NAME: Record<string, string> = { primary: 'Primary', secondary: 'Backup' };
const roleName = (r: string | null | undefined) => (r ? (ROLE_NAME[r] ?? humanize(r)) : '—');

const MODES = [
  { id: 'single', label: 'Single input (no failover)' },
  { id: 'auto_failover', label: 'Automatic failover' },
  { id: 'manual', label: 'Manual switching only' },
] as const;

const INPUT_TONE: Record<string, string> = {
  active: 'badge-ok',
  standby: 'badge-info',
  lost: 'badge-bad',
  not_configured: 'badge-neutral',
};

const SWITCH_REASON: Record<string, string> = {
  primary_lost: 'the primary input was lost',
  secondary_lost: 'the backup input was lost',
  manual: 'switched by hand',
  primary_restored: 'the primary input came back',
};

/** A live indicator: whether screens move on server events or only on their own polling. */
export function LiveIndicator() {
  const connected = useEventsConnected();
  return (
    <span className={`badge ${connected ? 'badge-ok' : 'badge-neutral'}`} data-testid="events-state" data-connected={connected}>
      <span className={`badge-dot${connected ? ' pulse' : ''}`} aria-hidden="true" />
      {connected ? 'Live updates' : 'Updating every few seconds'}
    </span>
  );
}

export function SourcesPage() {
  useDocumentTitle('Source redundancy');
  const toast = useToast();
  const [channels, setChannels] = useState<Channel[] | null>(null);

  useEffect(() => {
    const ctrl = new AbortController();
    listChannels({ limit: 200 }, ctrl.signal)
      .then((l) => setChannels(l.items))
      .catch((err) => {
        if (ctrl.signal.aborted) return;
        toast.error(err, 'The channels could not be loaded');
        setChannels([]);
      });
    return () => ctrl.abort();
  }, [toast]);

  return (
    <>
      <PageHeader
        title="Source redundancy"
        lead="Primary and backup encoders per channel: which one is on air, their live figures, the failover settings, and a switch."
        actions={<LiveIndicator />}
      />
      {channels === null ? (
        <Loading />
      ) : channels.length === 0 ? (
        <EmptyState icon="split" title="No channels yet" action={<Link className="button button-primary" to="/stream/setup">Create a channel</Link>}>
          Sources belong to channels; create one first.
        </EmptyState>
      ) : (
        <div className="source-list">
          {channels.map((c) => (
            <ChannelSources key={c.id} channel={c} />
          ))}
        </div>
      )}
    </>
  );
}

function ChannelSources({ channel }: { channel: Channel }) {
  const toast = useToast();
  const [config, setConfig] = useState<SourcesConfig | null>(null);
  const [status, setStatus] = useState<SourcesStatus | null>(null);
  const [input, setInput] = useState<InputStatus | null>(null);
  const [receivedAt, setReceivedAt] = useState(() => Date.now());
  const [editing, setEditing] = useState(false);
  const [switching, setSwitching] = useState(false);
  const [shownOnce, setShownOnce] = useState<{ role: string; url: string } | null>(null);
  const [lastEvent, setLastEvent] = useState<string | null>(null);
  const alive = useRef(true);

  const loadStatus = useCallback(async () => {
    try {
      const [st, ch] = await Promise.all([getSourcesStatus(channel.id), getChannel(channel.id)]);
      if (!alive.current) return;
      setStatus(st);
      setInput(ch.status as unknown as InputStatus);
      setReceivedAt(Date.now());
    } catch {
      // the next tick or event tries again
    }
  }, [channel.id]);

  useEffect(() => {
    alive.current = true;
    getSourcesConfig(channel.id)
      .then((c) => alive.current && setConfig(c))
      .catch((err) => toast.error(err, `The sources of ${channel.name} could not be loaded`));
    void loadStatus();
    const t = window.setInterval(() => {
      if (document.visibilityState === 'visible') void loadStatus();
    }, FIGURES_MS);
    return () => {
      alive.current = false;
      window.clearInterval(t);
    };
  }, [channel.id, channel.name, loadStatus, toast]);

  // Failovers and input changes move the indicator at once, without waiting for the tick.
  useEvents([`channel:${channel.id}`], (e) => {
    if (e.type === 'source.failover') {
      const d = e.data as { to?: string; reason?: string };
      setLastEvent(`Switched to ${roleName(d.to)}: ${SWITCH_REASON[d.reason ?? ''] ?? humanize(d.reason)}`);
      setStatus((s) => (s && d.to ? { ...s, active: d.to } : s));
    }
    if (e.type.startsWith('source.') || e.type === 'channel.input' || e.type === 'resync') void loadStatus();
  });

  async function force(to: 'primary' | 'secondary') {
    setSwitching(true);
    try {
      const st = await switchSource(channel.id, to);
      setStatus(st);
      toast.success(`${channel.name}: switching to the ${roleName(to).toLowerCase()} input`);
    } catch (err) {
      toast.error(err, 'The switch was refused');
    } finally {
      setSwitching(false);
    }
  }

  async function changeBackup(add: 'rtmp' | 'srt' | null) {
    try {
      const c = await putSourcesConfig(channel.id, { secondary_source: add ? { protocol: add } : null });
      setConfig(c);
      if (add && c.secondary_source) setShownOnce({ role: 'secondary', url: c.secondary_source.publish_url });
      toast.success(add ? 'Backup input added' : 'Backup input removed');
      void loadStatus();
    } catch (err) {
      toast.error(err, 'The backup input could not be changed');
    }
  }

  // The engine keeps naming an input active after its encoder left: on air only while connected.
  const active = status?.active && status.inputs.find((i) => i.role === status.active)?.connected ? status.active : null;
  const other = active === 'primary' ? 'secondary' : 'primary';
  const hasBackup = Boolean(config?.secondary_source);
  const headingId = `sources-${channel.id}`;
  const inputOf = (role: string) => status?.inputs.find((i) => i.role === role);

  return (
    <section className="card source-card" aria-labelledby={headingId} data-channel={channel.name}>
      <div className="card-head source-head">
        <div>
          <h2 id={headingId}>{channel.name}</h2>
          <p className="muted small">{config ? MODES.find((m) => m.id === config.redundancy_mode)?.label ?? humanize(config.redundancy_mode) : '…'}</p>
        </div>
        <p className="on-air-source" data-testid="on-air-source" data-active={active ?? 'none'} aria-live="polite">
          <span className="muted small block">On air</span>
          <strong>{status?.fill_since ? 'Fill signal' : active ? roleName(active) : 'No signal'}</strong>
          {status?.switching_to && <span className="small block">switching to {roleName(status.switching_to)}…</span>}
        </p>
      </div>

      {lastEvent && (
        <p className="notice notice-info small" data-testid="last-failover">
          <Icon name="split" size={16} /> {lastEvent}
        </p>
      )}
      {status?.fill_since && (
        <p className="notice notice-warn small">No input is healthy: the destinations get the fill signal since {formatTime(status.fill_since)}.</p>
      )}

      <div className="source-inputs">
        {(['primary', 'secondary'] as const).map((role) => (
          <InputPanel
            key={role}
            role={role}
            view={role === 'primary' ? config?.primary_source : config?.secondary_source}
            st={inputOf(role)}
            onAir={active === role}
            resolution={active === role && input?.video ? `${input.video.width}×${input.video.height}` : null}
            receivedAt={receivedAt}
          />
        ))}
      </div>

      {shownOnce && (
        <div className="notice notice-warn">
          <CopyField label={`${roleName(shownOnce.role)} publish URL (shown once)`} value={shownOnce.url} secret testId="new-source-url" />
        </div>
      )}

      <div className="card-foot">
        <p className="small muted">
          {status ? `${status.switches} switch${status.switches === 1 ? '' : 'es'} since live` : ''}
          {status?.last_switch ? ` · last at ${formatTime(status.last_switch.at)}` : ''}
        </p>
        <div className="row-actions">
          {hasBackup && config?.redundancy_mode !== 'single' && (
            <button
              type="button"
              className="button button-primary button-small"
              disabled={switching || !active}
              onClick={() => force(other)}
              aria-label={`Switch ${channel.name} to ${roleName(other).toLowerCase()}`}
            >
              <Icon name="split" size={16} /> Switch to {roleName(other).toLowerCase()}
            </button>
          )}
          {!hasBackup && config && (
            <>
              <button type="button" className="button button-secondary button-small" onClick={() => changeBackup('rtmp')}>
                <Icon name="plus" size={16} /> Add RTMP backup
              </button>
              <button type="button" className="button button-secondary button-small" onClick={() => changeBackup('srt')}>
                <Icon name="plus" size={16} /> Add SRT backup
              </button>
            </>
          )}
          {config && (
            <button
              type="button"
              className="button button-secondary button-small"
              onClick={() => setEditing(true)}
              aria-label={`Failover settings of ${channel.name}`}
            >
              <Icon name="sliders" size={16} /> Settings
            </button>
          )}
        </div>
      </div>

      {config && (
        <Modal open={editing} title={`Failover settings: ${channel.name}`} onClose={() => setEditing(false)}>
          <SettingsForm
            config={config}
            channelId={channel.id}
            onSaved={(c) => {
              setConfig(c);
              setEditing(false);
              toast.success('Failover settings saved');
            }}
            onRemoveBackup={
              hasBackup
                ? () => {
                    setEditing(false);
                    void changeBackup(null);
                  }
                : undefined
            }
          />
        </Modal>
      )}
    </section>
  );
}

function InputPanel({
  role,
  view,
  st,
  onAir,
  resolution,
  receivedAt,
}: {
  role: 'primary' | 'secondary';
  view: SourceView | null | undefined;
  st: SourceStatus | undefined;
  onAir: boolean;
  resolution: string | null;
  receivedAt: number;
}) {
  const state = view ? (st?.state ?? 'standby') : 'not_configured';
  const since = st?.connected && st.uptime_seconds != null ? new Date(receivedAt - st.uptime_seconds * 1000).toISOString() : null;
  return (
    <div className={`source-input${onAir ? ' is-on-air' : ''}`} data-role={role} data-state={state} data-testid={`input-${role}`}>
      <div className="source-input-head">
        <h3>{roleName(role)}</h3>
        <span className={`badge ${INPUT_TONE[state] ?? 'badge-neutral'}`} data-state={state}>
          <span className={`badge-dot${state === 'active' ? ' pulse' : ''}`} aria-hidden="true" />
          {onAir ? 'On air' : humanize(state)}
        </span>
      </div>
      {view ? (
        <dl className="kv small">
          <dt>Protocol</dt>
          <dd>{view.protocol.toUpperCase()}{view.protocol === 'srt' ? ` · ${view.mode}${view.encryption ? ' · encrypted' : ''}` : ''}</dd>
          <dt>Connected</dt>
          <dd data-testid={`connected-${role}`}>{st?.connected ? `Yes, since ${formatTime(since)}` : 'No'}</dd>
          <dt>Bitrate</dt>
          <dd>{st?.connected ? formatBitrate(st.bitrate_bps) : '—'}</dd>
          <dt>Frame rate</dt>
          <dd>{st?.connected && st.fps ? `${st.fps.toFixed(1)} fps` : '—'}</dd>
          <dt>Resolution</dt>
          <dd>{resolution ?? (st?.connected ? 'when on air' : '—')}</dd>
          {st?.srt && (
            <>
              <dt>SRT</dt>
              <dd>
                RTT {st.srt.rtt_ms.toFixed(0)} ms · lost {st.srt.packets_lost} · retransmitted {st.srt.packets_retransmitted}
              </dd>
            </>
          )}
          <dt>Publish key</dt>
          <dd className="mono break">{view.publish_key_masked}</dd>
        </dl>
      ) : (
        <p className="muted small">No {roleName(role).toLowerCase()} input configured.</p>
      )}
    </div>
  );
}

const FIELDS = ['redundancy_mode', 'failover_threshold', 'auto_return', 'auto_return_hold', 'fill_hold', 'health_check_interval'] as const;

function SettingsForm({
  config,
  channelId,
  onSaved,
  onRemoveBackup,
}: {
  config: SourcesConfig;
  channelId: string;
  onSaved: (c: SourcesConfig) => void;
  onRemoveBackup?: (() => void) | undefined;
}) {
  const [mode, setMode] = useState(config.redundancy_mode);
  const [threshold, setThreshold] = useState(String(config.failover_threshold));
  const [autoReturn, setAutoReturn] = useState(config.auto_return);
  const [hold, setHold] = useState(String(config.auto_return_hold));
  const [fill, setFill] = useState(String(config.fill_hold));
  const [interval, setInterval_] = useState(String(config.health_check_interval));
  const [pending, setPending] = useState(false);
  const { errors, clear, report } = useFieldErrors(FIELDS);

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    clear();
    setPending(true);
    const num = (s: string) => (s.trim() === '' ? Number.NaN : Number(s));
    const body: SourcesConfigBody = {
      redundancy_mode: mode,
      failover_threshold: num(threshold),
      auto_return: autoReturn,
      auto_return_hold: num(hold),
      fill_hold: num(fill),
      health_check_interval: num(interval),
    };
    // An empty or non-numeric box is the server's to refuse too, but JSON has no NaN: say so here.
    for (const [k, v] of Object.entries(body)) {
      if (typeof v === 'number' && Number.isNaN(v)) {
        report(new ApiError(400, { code: 'validation_failed', field: k, detail: 'enter a number of seconds' }, ''));
        setPending(false);
        return;
      }
    }
    try {
      onSaved(await putSourcesConfig(channelId, body));
    } catch (err) {
      report(err, 'The settings were refused');
    } finally {
      setPending(false);
    }
  }

  const num = (label: string, field: (typeof FIELDS)[number], value: string, set: (v: string) => void, hint: string) => (
    <Field label={label} error={errors[field]} hint={hint}>
      {(props) => (
        <input
          {...props}
          name={field}
          type="text"
          inputMode="decimal"
          value={value}
          onChange={(e) => {
            set(e.target.value);
            clear(field);
          }}
        />
      )}
    </Field>
  );

  return (
    <form className="form" onSubmit={onSubmit} aria-label="Failover settings" noValidate>
      <Field label="Mode" error={errors.redundancy_mode}>
        {(props) => (
          <select {...props} value={mode} onChange={(e) => setMode(e.target.value)}>
            {MODES.map((m) => (
              <option key={m.id} value={m.id}>
                {m.label}
              </option>
            ))}
          </select>
        )}
      </Field>
      {num('Failover threshold (seconds)', 'failover_threshold', threshold, setThreshold, 'Seconds without media before an input counts as lost: 0.2–60.')}
      <label className="check">
        <input type="checkbox" checked={autoReturn} onChange={(e) => setAutoReturn(e.target.checked)} />
        <span>Return to the primary once it is healthy again</span>
      </label>
      {num('Return hold (seconds)', 'auto_return_hold', hold, setHold, 'How long the primary must stay healthy before the return: 0–3600.')}
      {num('Fill hold (seconds)', 'fill_hold', fill, setFill, 'With no healthy input, how long destinations get the fill signal before they stop: 0–3600.')}
      {num('Health check interval (seconds)', 'health_check_interval', interval, setInterval_, '0.1–60.')}
      <div className="form-actions">
        {onRemoveBackup && (
          <button type="button" className="button button-ghost danger-text" onClick={onRemoveBackup}>
            Remove backup input
          </button>
        )}
        <button type="submit" className="button button-primary" disabled={pending}>
          {pending ? 'Saving…' : 'Save settings'}
        </button>
      </div>
    </form>
  );
}
