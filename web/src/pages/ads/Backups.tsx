import { useCallback, useEffect, useState } from 'react';
import { ApiError } from '../../api/client';
import { Loading } from '../../auth/RequireAuth';
import { useToast } from '../../components/Toasts';
import { EmptyState, PageHeader } from '../../components/ui';
import { formatBytes, formatDateTime } from '../../lib/format';
import { useDocumentTitle } from '../../useDocumentTitle';
import {
  backupDownloadUrl,
  createBackup,
  getBackupSchedule,
  listBackups,
  putBackupSchedule,
  restoreBackup,
  type Backup,
  type BackupSchedule,
  type RestoreResult,
} from './api';

const ENTITY_TYPES = ['clients', 'shows', 'episodes', 'campaigns', 'availability', 'activities'] as const;

/** Backups of the workspace for admins: list, create, download, restore (dry run first), schedule. */
export function BackupsPage() {
  useDocumentTitle('Backups');
  const toast = useToast();
  const [items, setItems] = useState<Backup[] | null>(null);
  const [unavailable, setUnavailable] = useState(false);
  const [busy, setBusy] = useState(false);
  const [schedule, setSchedule] = useState<BackupSchedule | null>(null);
  const [restoreId, setRestoreId] = useState<string | null>(null);
  const [types, setTypes] = useState<string[]>([...ENTITY_TYPES]);
  const [dryRun, setDryRun] = useState(true);
  const [result, setResult] = useState<RestoreResult | null>(null);

  const load = useCallback(async () => {
    try {
      setItems(await listBackups());
      setUnavailable(false);
      getBackupSchedule().then(setSchedule, () => setSchedule(null));
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405 || err.status === 501)) {
        setUnavailable(true);
        setItems([]);
        return;
      }
      toast.error(err, 'The backups could not be loaded');
      setItems((x) => x ?? []);
    }
  }, [toast]);
  useEffect(() => {
    void load();
  }, [load]);

  async function backupNow() {
    setBusy(true);
    try {
      await createBackup();
      toast.success('Backup started');
      void load();
    } catch (err) {
      toast.error(err, 'The backup could not be started');
    } finally {
      setBusy(false);
    }
  }

  async function restore() {
    if (!restoreId) return;
    setBusy(true);
    try {
      setResult(await restoreBackup({ backup_id: restoreId, entity_types: types, dry_run: dryRun }));
      toast.success(dryRun ? 'Dry run finished: nothing was changed' : 'Restore finished');
    } catch (err) {
      toast.error(err, 'The restore failed');
    } finally {
      setBusy(false);
    }
  }

  async function saveSchedule(next: BackupSchedule) {
    try {
      setSchedule(await putBackupSchedule(next));
      toast.success('Schedule saved');
    } catch (err) {
      toast.error(err, 'The schedule could not be saved');
    }
  }

  if (items === null) return <Loading />;
  if (unavailable)
    return (
      <>
        <PageHeader title="Backups" />
        <div data-testid="backups-unavailable">
          <EmptyState icon="info" title="Backups are not available on this server yet">
            This server does not offer the backups API. Update Lunora to a release with it; nothing is lost meanwhile.
          </EmptyState>
        </div>
      </>
    );
  return (
    <>
      <PageHeader
        title="Backups"
        lead="Copies of the workspace's data; restore some entity types, trying a dry run first."
        actions={
          <button type="button" className="button button-primary" onClick={backupNow} disabled={busy}>
            Back up now
          </button>
        }
      />
      {items.length === 0 ? (
        <EmptyState icon="download" title="No backups yet" />
      ) : (
        <table className="table" aria-label="Backups">
          <thead>
            <tr>
              <th>Taken</th>
              <th>Status</th>
              <th>Size</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {items.map((b) => (
              <tr key={b.id}>
                <td>{formatDateTime(b.created_at ?? null)}</td>
                <td>{b.status ?? '—'}</td>
                <td>{b.size_bytes != null ? formatBytes(b.size_bytes) : '—'}</td>
                <td className="row-actions">
                  <a className="button button-ghost button-small" href={backupDownloadUrl(b.id)} download>
                    Download
                  </a>
                  <button type="button" className="button button-ghost button-small" onClick={() => setRestoreId(b.id)}>
                    Restore…
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {restoreId && (
        <section className="card" aria-labelledby="restore">
          <h2 id="restore">Restore from {restoreId}</h2>
          <fieldset>
            <legend>What to restore</legend>
            {ENTITY_TYPES.map((t) => (
              <label key={t} className="checkbox">
                <input type="checkbox" checked={types.includes(t)} onChange={(e) => setTypes((xs) => (e.target.checked ? [...xs, t] : xs.filter((x) => x !== t)))} /> {t}
              </label>
            ))}
          </fieldset>
          <label className="checkbox">
            <input type="checkbox" checked={dryRun} onChange={(e) => setDryRun(e.target.checked)} /> Dry run (report only, change nothing)
          </label>
          <div className="form-actions">
            <button type="button" className="button button-primary" disabled={busy || types.length === 0} onClick={restore}>
              {dryRun ? 'Try restore' : 'Restore'}
            </button>
            <button type="button" className="button button-ghost" onClick={() => setRestoreId(null)}>
              Close
            </button>
          </div>
          {result && <pre className="mono small">{JSON.stringify(result, null, 2)}</pre>}
        </section>
      )}
      {schedule && (
        <section className="card" aria-labelledby="schedule">
          <h2 id="schedule">Schedule</h2>
          <label className="checkbox">
            <input type="checkbox" checked={!!schedule.enabled} onChange={(e) => void saveSchedule({ ...schedule, enabled: e.target.checked })} /> Back up automatically
          </label>
          <pre className="mono small">{JSON.stringify(schedule, null, 2)}</pre>
        </section>
      )}
    </>
  );
}
