import { useCallback, useEffect, useState } from 'react';
import { Link } from 'react-router';
import { getOverallHealth } from '../../api/client';
import {
  acknowledgeAlert,
  getDestinationsHealth,
  getEngineHealth,
  listAlerts,
  listChannels,
  listDestinations,
  listSessions,
  listUsers,
} from '../../api/endpoints';
import type { Alert, DestinationsReport, EngineReport, OverallHealth, SessionView } from '../../api/types';
import { useSession } from '../../auth/session';
import { Icon } from '../../components/Icons';
import { StatusBadge } from '../../components/StatusBadge';
import { useToast } from '../../components/Toasts';
import { PageHeader, Stat } from '../../components/ui';
import { formatAgo, formatBitrate, formatDuration, formatTime, humanize } from '../../lib/format';
import { useDocumentTitle } from '../../useDocumentTitle';
import { StateBadge } from '../stream/live';

interface Overview {
  health: OverallHealth | null;
  engine: EngineReport | null;
  destinations: DestinationsReport | null;
  channels: number | null;
  destinationCount: number | null;
  users: number | null;
  live: SessionView[];
  channelNames: Record<string, string>;
  alerts: Alert[] | null;
}

const SEVERITY: Record<string, string> = { critical: 'badge-bad', warning: 'badge-warn', info: 'badge-info' };

const REFRESH_MS = 5000;

function settled<T>(r: PromiseSettledResult<T>): T | null {
  return r.status === 'fulfilled' ? r.value : null;
}

export function AdminOverviewPage() {
  useDocumentTitle('Admin overview');
  const toast = useToast();
  const { can } = useSession();
  const [data, setData] = useState<Overview | null>(null);
  const [at, setAt] = useState<Date | null>(null);

  const load = useCallback(
    async (signal?: AbortSignal) => {
      const r = await Promise.allSettled([
        getOverallHealth(signal),
        getEngineHealth(signal),
        getDestinationsHealth(signal),
        listChannels({}, signal),
        listDestinations(signal),
        can('users_manage') ? listUsers({ limit: 200 }, signal) : Promise.reject(new Error('no access')),
        listSessions({ limit: 50 }, signal),
        listAlerts('active', signal),
      ]);
      if (signal?.aborted) return;
      const channels = settled(r[3]);
      const sessions = settled(r[6]);
      if (r.slice(0, 5).every((x) => x.status === 'rejected')) toast.error((r[0] as PromiseRejectedResult).reason);
      setData({
        health: settled(r[0]),
        engine: settled(r[1]),
        destinations: settled(r[2]),
        channels: channels?.items.length ?? null,
        destinationCount: settled(r[4])?.items.length ?? null,
        users: settled(r[5])?.items.length ?? null,
        live: (sessions?.items ?? []).filter((s) => !s.ended_at),
        channelNames: Object.fromEntries((channels?.items ?? []).map((c) => [c.id, c.name])),
        alerts: settled(r[7])?.items ?? null,
      });
      setAt(new Date());
    },
    [can, toast],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    const t = window.setInterval(() => void load(ctrl.signal), REFRESH_MS);
    return () => {
      ctrl.abort();
      window.clearInterval(t);
    };
  }, [load]);

  const d = data;
  const byState = d?.destinations?.by_state ?? {};
  const pushing = Object.values(byState).reduce((n, v) => n + Number(v), 0);
  const pushBandwidth = (d?.destinations?.destinations ?? []).reduce(
    (n, x) => n + Number((x.status as { bitrate_bps?: number } | null)?.bitrate_bps ?? 0),
    0,
  );

  return (
    <>
      <PageHeader
        title="System overview"
        lead={at ? `Updated ${formatTime(at.toISOString())}` : 'Loading…'}
        actions={d?.health ? <StatusBadge status={d.health.status} /> : undefined}
      />

      <div className="stat-grid">
        <Stat label="Live sessions" value={d ? d.live.length : '—'} testId="stat-live-sessions" />
        <Stat label="Channels" value={d?.channels ?? '—'} sub={d?.engine ? `${d.engine.live_channels} with live input` : undefined} testId="stat-channels" />
        <Stat
          label="Destinations"
          value={d?.destinationCount ?? '—'}
          sub={pushing ? `${byState.live ?? 0} of ${pushing} pushing live` : 'none pushing'}
          testId="stat-destinations"
        />
        <Stat label="Outgoing bandwidth" value={formatBitrate(pushBandwidth)} sub={d?.engine ? `ingest ${formatBitrate(d.engine.ingest_bitrate_bps)}` : undefined} />
        {can('users_manage') && <Stat label="Users" value={d?.users ?? '—'} />}
      </div>

      <div className="two-col">
        <section className="card" aria-labelledby="sys-heading">
          <div className="card-head">
            <h2 id="sys-heading">System status</h2>
            {d?.health && <span className="muted small">v{d.health.version}</span>}
          </div>
          {d?.health ? (
            <ul className="components">
              {Object.entries(d.health.components).map(([k, c]) => (
                <li key={k} data-component={k}>
                  <div>
                    <span className="component-name">{humanize(k)}</span>
                    {c.detail && <span className="component-detail">{c.detail}</span>}
                    {k === 'media_engine' && d.engine && (
                      <span className="component-detail">
                        {d.engine.channels} channels open · {d.engine.subscribers} outputs · up{' '}
                        {formatDuration(d.engine.uptime_seconds)}
                      </span>
                    )}
                  </div>
                  <StatusBadge status={c.status} />
                </li>
              ))}
              {d.destinations && (
                <li data-component="destinations">
                  <div>
                    <span className="component-name">Destinations</span>
                    <span className="component-detail">
                      {pushing
                        ? Object.entries(byState)
                            .map(([s, n]) => `${n} ${s}`)
                            .join(', ')
                        : 'Nothing pushing'}
                    </span>
                  </div>
                  <StatusBadge status={d.destinations.status} />
                </li>
              )}
            </ul>
          ) : (
            <p className="muted">Checking…</p>
          )}
        </section>

        <section className="card" aria-labelledby="live-heading">
          <div className="card-head">
            <h2 id="live-heading">Live now</h2>
            <Link to="/admin/sessions" className="button button-ghost button-small">
              Session logs
            </Link>
          </div>
          {!d || d.live.length === 0 ? (
            <p className="muted">No channel is streaming right now.</p>
          ) : (
            <ul className="live-list">
              {d.live.map((s) => {
                const pushes = (d.destinations?.destinations ?? []).filter((x) => x.channel_id === s.channel_id);
                return (
                  <li key={s.id}>
                    <div className="grow">
                      <Link to={`/stream/channels/${s.channel_id}`}>
                        <strong>{d.channelNames[s.channel_id] ?? 'Channel'}</strong>
                      </Link>
                      <span className="muted small block">
                        on air {formatDuration(s.duration_seconds)} · {pushes.length} destinations
                      </span>
                    </div>
                    <span className="marks">
                      {pushes.map((p) => (
                        <StateBadge key={p.destination_id} state={String((p.status as { state?: string } | null)?.state ?? 'idle')} />
                      ))}
                    </span>
                  </li>
                );
              })}
            </ul>
          )}
        </section>
      </div>

      <section aria-labelledby="quick" className="section">
        <h2 id="quick" className="section-title">
          Quick actions
        </h2>
        <div className="quick-actions">
          {can('users_manage') && (
            <Link to="/admin/users" className="quick-action">
              <Icon name="users" /> Manage users
            </Link>
          )}
          {can('api_tokens_manage') && (
            <Link to="/admin/api-tokens" className="quick-action">
              <Icon name="key" /> API tokens
            </Link>
          )}
          {can('audit_read') && (
            <Link to="/admin/audit" className="quick-action">
              <Icon name="list" /> Audit log
            </Link>
          )}
          <Link to="/admin/sessions" className="quick-action">
            <Icon name="history" /> Session logs
          </Link>
          <a href="/api/v1/docs" className="quick-action">
            <Icon name="info" /> API reference
          </a>
        </div>
      </section>

      <section aria-labelledby="alerts" className="section">
        <h2 id="alerts" className="section-title">
          Alerts
        </h2>
        {!d?.alerts ? (
          <p className="muted card soft">Alerts could not be read.</p>
        ) : d.alerts.length === 0 ? (
          <p className="card soft all-clear">
            <Icon name="check" /> No active alerts.
          </p>
        ) : (
          <ul className="alert-list card">
            {d.alerts.map((a) => (
              <li key={a.id} data-alert={a.rule}>
                <span className={`badge ${SEVERITY[a.severity] ?? 'badge-neutral'}`}>{humanize(a.severity)}</span>
                <div className="grow">
                  <strong>{a.message}</strong>
                  <span className="muted small block">
                    {a.subject} · raised {formatAgo(a.raised_at)}
                    {a.acknowledged_at && ` · acknowledged ${formatAgo(a.acknowledged_at)}`}
                  </span>
                </div>
                {can('channels_write') && a.state === 'active' && (
                  <button
                    type="button"
                    className="button button-secondary button-small"
                    onClick={async () => {
                      try {
                        await acknowledgeAlert(a.id);
                        toast.success('Alert acknowledged');
                        await load();
                      } catch (err) {
                        toast.error(err);
                      }
                    }}
                  >
                    Acknowledge
                  </button>
                )}
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}
