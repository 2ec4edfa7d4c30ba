import { useCallback, useEffect, useState } from 'react';
import { acknowledgeAlert, listAlerts, resolveAlert } from '../../api/endpoints';
import type { Alert } from '../../api/types';
import { Loading } from '../../auth/RequireAuth';
import { useToast } from '../../components/Toasts';
import { EmptyState, PageHeader, Tabs } from '../../components/ui';
import { formatDateTime, humanize } from '../../lib/format';
import { useEvents } from '../../live/events';
import { useDocumentTitle } from '../../useDocumentTitle';
import { LiveIndicator } from './Sources';

const SEVERITY: Record<string, string> = { critical: 'badge-bad', warning: 'badge-warn', info: 'badge-info' };
const STATE: Record<string, string> = { active: 'badge-bad', acknowledged: 'badge-warn', resolved: 'badge-ok' };
/** Some alerts are raised without an event (e.g. a source failover): read again this often. */
const POLL_MS = 10_000;

export function AlertsPage() {
  useDocumentTitle('Alerts');
  const toast = useToast();
  const [tab, setTab] = useState<'active' | 'history'>('active');
  const [items, setItems] = useState<Alert[] | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setItems((await listAlerts(tab, undefined, { limit: 100 })).items);
    } catch (err) {
      toast.error(err, 'The alerts could not be loaded');
      setItems((x) => x ?? []);
    }
  }, [tab, toast]);

  useEffect(() => {
    setItems(null);
    void load();
    const t = window.setInterval(() => {
      if (document.visibilityState === 'visible') void load();
    }, POLL_MS);
    return () => window.clearInterval(t);
  }, [load]);

  useEvents(['org'], (e) => {
    if (e.type.startsWith('alert.') || e.type === 'source.failover' || e.type === 'resync') void load();
  });

  async function act(a: Alert, what: 'acknowledge' | 'resolve') {
    setBusy(a.id);
    try {
      const next = what === 'acknowledge' ? await acknowledgeAlert(a.id) : await resolveAlert(a.id);
      setItems((xs) => {
        if (!xs) return xs;
        if (tab === 'active' && next.state === 'resolved') return xs.filter((x) => x.id !== a.id);
        return xs.map((x) => (x.id === a.id ? next : x));
      });
      toast.success(what === 'acknowledge' ? 'Alert acknowledged' : 'Alert resolved');
    } catch (err) {
      toast.error(err, 'The alert could not be changed');
    } finally {
      setBusy(null);
    }
  }

  return (
    <>
      <PageHeader title="Alerts" lead="What needs attention: failovers, failing destinations, cameras going offline, storage." actions={<LiveIndicator />} />
      <Tabs
        label="Alert state"
        tabs={[
          { id: 'active', label: 'Open' },
          { id: 'history', label: 'Resolved' },
        ]}
        value={tab}
        onChange={setTab}
      />
      <div className="tab-panel">
        {items === null ? (
          <Loading />
        ) : items.length === 0 ? (
          <EmptyState icon="bell" title={tab === 'active' ? 'No open alerts' : 'No resolved alerts'} />
        ) : (
          <ul className="alert-list alert-page-list" aria-label="Alerts">
            {items.map((a) => (
              <li key={a.id} className="card alert-item" data-alert={a.rule} data-state={a.state}>
                <div className="alert-head">
                  <span className={`badge ${SEVERITY[a.severity] ?? 'badge-neutral'}`}>{humanize(a.severity)}</span>
                  <strong>{humanize(a.rule)}</strong>
                  <span className={`badge ${STATE[a.state] ?? 'badge-neutral'}`} data-testid="alert-state">
                    {humanize(a.state)}
                  </span>
                </div>
                <p>{a.message}</p>
                <p className="small muted">
                  {a.subject} · raised {formatDateTime(a.raised_at)}
                  {a.acknowledged_at ? ` · acknowledged ${formatDateTime(a.acknowledged_at)}` : ''}
                  {a.resolved_at ? ` · resolved ${formatDateTime(a.resolved_at)}` : ''}
                </p>
                {a.state !== 'resolved' && (
                  <div className="row-actions">
                    {a.state === 'active' && (
                      <button type="button" className="button button-secondary button-small" disabled={busy === a.id} onClick={() => act(a, 'acknowledge')} aria-label={`Acknowledge ${humanize(a.rule)} on ${a.subject}`}>
                        Acknowledge
                      </button>
                    )}
                    <button type="button" className="button button-ghost button-small" disabled={busy === a.id} onClick={() => act(a, 'resolve')} aria-label={`Resolve ${humanize(a.rule)} on ${a.subject}`}>
                      Resolve
                    </button>
                  </div>
                )}
              </li>
            ))}
          </ul>
        )}
      </div>
    </>
  );
}
