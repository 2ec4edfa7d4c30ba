import { useCallback, useEffect, useState } from 'react';
import {
  RESOLUTIONS,
  listModerationActions,
  listReports,
  resolveReport,
  reviewReport,
  type ModerationAction,
  type Report,
} from '../../api/social';
import { errorText, useToast } from '../../components/Toasts';
import { EmptyState, PageHeader, Tabs } from '../../components/ui';
import { useDocumentTitle } from '../../useDocumentTitle';

type Status = 'pending' | 'reviewed' | 'resolved';

const ACTION_LABELS: Record<string, string> = {
  dismiss: 'Dismiss',
  delete_message: 'Delete the message',
  timeout_user: 'Time the user out',
  ban_user: 'Ban the user from chat',
};

function when(at: string | null | undefined): string {
  if (!at) return '';
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? at : d.toLocaleString();
}

/** The viewer platform's moderation queue: reports by status, their resolution, and the history. */
export function ModerationPage() {
  useDocumentTitle('Moderation queue');
  const [status, setStatus] = useState<Status>('pending');
  const [reports, setReports] = useState<Report[] | null>(null);
  const [actions, setActions] = useState<ModerationAction[]>([]);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        const [r, a] = await Promise.all([listReports(status, signal), listModerationActions(signal)]);
        setReports(r.items);
        setActions(a.items);
        setError(null);
      } catch (err) {
        if (!signal?.aborted) setError(errorText(err));
      }
    },
    [status],
  );

  useEffect(() => {
    const ctl = new AbortController();
    setReports(null);
    void load(ctl.signal);
    return () => ctl.abort();
  }, [load]);

  return (
    <main className="moderation-page page">
      <PageHeader title="Moderation queue" lead="Reports from viewers about chat messages, users and streams." />
      <Tabs<Status>
        label="Report status"
        tabs={[
          { id: 'pending', label: 'Pending' },
          { id: 'reviewed', label: 'Reviewed' },
          { id: 'resolved', label: 'Resolved' },
        ]}
        value={status}
        onChange={setStatus}
      />
      {error && <p role="alert">{error}</p>}
      {reports === null ? (
        <p>Loading…</p>
      ) : reports.length === 0 ? (
        <EmptyState icon="check" title={`No ${status} reports`} />
      ) : (
        <ul className="report-list">
          {reports.map((r) => (
            <ReportCard key={r.id} report={r} onChanged={() => void load()} />
          ))}
        </ul>
      )}
      <h2>Moderation history</h2>
      {actions.length === 0 ? (
        <p>No actions yet.</p>
      ) : (
        <table className="table moderation-actions" data-testid="moderation-actions">
          <thead>
            <tr>
              <th>When</th>
              <th>Action</th>
              <th>Target</th>
              <th>Why</th>
              <th>Moderator</th>
            </tr>
          </thead>
          <tbody>
            {actions.map((a) => (
              <tr key={a.id} data-action={a.action}>
                <td>{when(a.created_at)}</td>
                <td>
                  {a.action}
                  {a.duration_seconds ? ` (${Math.round(a.duration_seconds / 60) || a.duration_seconds + ' s'}${a.duration_seconds >= 60 ? ' min' : ''})` : ''}
                </td>
                <td>
                  {a.target_type} {a.target_id.slice(-8)}
                </td>
                <td>{a.reason}</td>
                <td>{a.moderator_id?.slice(-8) ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}

function ReportCard({ report, onChanged }: { report: Report; onChanged: () => void }) {
  const toast = useToast();
  const [action, setAction] = useState<string>(report.target_type === 'message' ? 'delete_message' : 'dismiss');
  const [minutes, setMinutes] = useState(10);
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const open = report.status !== 'resolved';
  const run = async (what: () => Promise<unknown>, done: string) => {
    setBusy(true);
    try {
      await what();
      toast.success(done);
      onChanged();
    } catch (err) {
      toast.error(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <li className="report-card card" data-testid="report" data-report={report.id} data-status={report.status}>
      <div className="report-head">
        <strong>{report.reason}</strong> · {report.target_type} · reported {when(report.created_at)}
        <span className={`badge badge-${report.status}`}>{report.status}</span>
      </div>
      {report.excerpt && <blockquote className="report-excerpt">{report.excerpt}</blockquote>}
      {report.details && <p className="report-details">{report.details}</p>}
      {report.action && (
        <p className="report-outcome">
          Resolved with: <strong>{report.action}</strong>
          {report.note ? ` — ${report.note}` : ''}
        </p>
      )}
      {open && (
        <div className="report-actions">
          <label>
            Action{' '}
            <select aria-label="Action" value={action} onChange={(e) => setAction(e.target.value)}>
              {RESOLUTIONS.filter((a) => a !== 'delete_message' || report.target_type === 'message')
                .filter((a) => report.target_type !== 'stream' || a === 'dismiss')
                .map((a) => (
                  <option key={a} value={a}>
                    {ACTION_LABELS[a]}
                  </option>
                ))}
            </select>
          </label>
          {action === 'timeout_user' && (
            <label>
              Minutes{' '}
              <input
                aria-label="Minutes"
                type="number"
                min={1}
                max={10080}
                value={minutes}
                onChange={(e) => setMinutes(Number(e.target.value))}
              />
            </label>
          )}
          <label>
            Note{' '}
            <input aria-label="Note" value={note} onChange={(e) => setNote(e.target.value)} />
          </label>
          {report.status === 'pending' && (
            <button
              type="button"
              className="button"
              disabled={busy}
              onClick={() => void run(() => reviewReport(report.id, note), 'Marked reviewed.')}
            >
              Mark reviewed
            </button>
          )}
          <button
            type="button"
            className="button button-primary"
            disabled={busy}
            onClick={() =>
              void run(
                () => resolveReport(report.id, { action, minutes: action === 'timeout_user' ? minutes : undefined, note }),
                'Report resolved.',
              )
            }
          >
            Resolve
          </button>
        </div>
      )}
    </li>
  );
}
