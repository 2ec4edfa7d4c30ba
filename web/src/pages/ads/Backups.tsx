import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../../api/client';
import { Loading } from '../../auth/RequireAuth';
import { useToast } from '../../components/Toasts';
import { EmptyState, PageHeader } from '../../components/ui';
import { formatBytes, formatDateTime } from '../../lib/format';
import { useDocumentTitle } from '../../useDocumentTitle';
import {
  backupDownloadUrl,
  createBackup,
  deleteBackup,
  getBackupSchedule,
  listBackups,
  putBackupSchedule,
  restoreBackup,
  uploadBackup,
  type Backup,
  type BackupSchedule,
  type RestoreReport,
} from './api';

/** The entity types a restore can bring back (`store::backup::ENTITY_TYPES`). */
const ENTITY_TYPES = ['clients', 'shows', 'episodes', 'campaigns', 'availability'] as const;

/**
 * Backups for admins: the list (kind, time, size, what it holds), back up now, upload a
 * downloaded file, download, delete; restore chosen entity types, always shown as a dry run
 * first and applied only on a second, explicit step; the daily schedule and its retention.
 */
export function BackupsPage() {
  useDocumentTitle('Backups');
  const toast = useToast();
  const [items, setItems] = useState<Backup[] | null>(null);
  const [busy, setBusy] = useState(false);
  const [schedule, setSchedule] = useState<BackupSchedule | null>(null);
  const [restoreFrom, setRestoreFrom] = useState<Backup | null>(null);
  const [types, setTypes] = useState<string[]>(['campaigns']);
  const [report, setReport] = useState<RestoreReport | null>(null);
  const upload = useRef<HTMLInputElement>(null);

  const load = useCallback(async () => {
    try {
      setItems(await listBackups());
      setSchedule(await getBackupSchedule());
    } catch (err) {
      toast.error(err, 'The backups could not be loaded');
      setItems((x) => x ?? []);
    }
  }, [toast]);
  useEffect(() => {
    void load();
  }, [load]);

  async function run(what: string, f: () => Promise<unknown>) {
    setBusy(true);
    try {
      await f();
    } catch (err) {
      toast.error(err, what);
    } finally {
      setBusy(false);
    }
  }

  const backupNow = () =>
    run('The backup failed', async () => {
      const b = await createBackup();
      toast.success(`Backup taken (${formatBytes(b.size_bytes)})`);
      await load();
    });

  const onUpload = (file: File | undefined) =>
    file &&
    run('The file was refused', async () => {
      try {
        await uploadBackup(file);
      } finally {
        if (upload.current) upload.current.value = '';
      }
      toast.success('Backup file checked and added');
      await load();
    });

  const remove = (b: Backup) =>
    window.confirm(`Delete the backup of ${formatDateTime(b.created_at)}? The file is removed.`) &&
    run('The backup could not be deleted', async () => {
      await deleteBackup(b.id);
      if (restoreFrom?.id === b.id) setRestoreFrom(null);
      await load();
    });

  const restore = (dryRun: boolean) =>
    restoreFrom &&
    run(dryRun ? 'The dry run failed' : 'The restore failed', async () => {
      const r = await restoreBackup({ backup_id: restoreFrom.id, entity_types: types, dry_run: dryRun });
      setReport(r);
      if (!dryRun) toast.success('Restored');
    });

  async function saveSchedule(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    if (!schedule) return;
    const f = new FormData(e.currentTarget);
    const n = (k: string) => Number(f.get(k));
    try {
      setSchedule(
        await putBackupSchedule({
          ...schedule,
          enabled: f.get('enabled') === 'on',
          hour_utc: n('hour_utc'),
          daily_retention_days: n('daily_retention_days'),
          weekly_retention_days: n('weekly_retention_days'),
          monthly_retention_days: n('monthly_retention_days'),
        }),
      );
      toast.success('Schedule saved');
    } catch (err) {
      toast.error(err, err instanceof ApiError && err.field ? `Check ${err.field}` : 'The schedule could not be saved');
    }
  }

  if (items === null) return <Loading />;
  return (
    <>
      <PageHeader
        title="Backups"
        lead="Encrypted, checksummed snapshots of the whole database. Restore some entity types without touching the rest; every restore is shown as a dry run first."
        actions={
          <>
            <label className="button button-ghost">
              Upload a backup…
              <input
                ref={upload}
                type="file"
                accept=".lbk,application/octet-stream"
                hidden
                disabled={busy}
                onChange={(e) => void onUpload(e.target.files?.[0])}
              />
            </label>
            <button type="button" className="button button-primary" onClick={() => void backupNow()} disabled={busy}>
              Back up now
            </button>
          </>
        }
      />
      {items.length === 0 ? (
        <EmptyState icon="download" title="No backups yet">
          Take one now, or turn the daily schedule on below.
        </EmptyState>
      ) : (
        <table className="table" aria-label="Backups">
          <thead>
            <tr>
              <th>Taken</th>
              <th>Kind</th>
              <th>Size</th>
              <th>Holds</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {items.map((b) => (
              <tr key={b.id} data-testid="backup-row">
                <td>{formatDateTime(b.created_at)}</td>
                <td>{b.kind}</td>
                <td>{formatBytes(b.size_bytes)}</td>
                <td className="small">
                  {Object.entries(b.row_counts)
                    .filter(([, n]) => n > 0)
                    .map(([t, n]) => `${n} ${t}`)
                    .join(', ') || 'no rows of this organization'}
                </td>
                <td className="row-actions">
                  <a className="button button-ghost button-small" href={backupDownloadUrl(b.id)} download>
                    Download
                  </a>
                  <button
                    type="button"
                    className="button button-ghost button-small"
                    onClick={() => {
                      setRestoreFrom(b);
                      setReport(null);
                    }}
                  >
                    Restore…
                  </button>
                  <button type="button" className="button button-ghost button-small" disabled={busy} onClick={() => void remove(b)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {restoreFrom && (
        <section className="card" aria-labelledby="restore">
          <h2 id="restore">Restore from the backup of {formatDateTime(restoreFrom.created_at)}</h2>
          <fieldset>
            <legend>Entity types to put back as they were (users and everything else stay as they are)</legend>
            {ENTITY_TYPES.map((t) => (
              <label key={t} className="checkbox">
                <input
                  type="checkbox"
                  checked={types.includes(t)}
                  onChange={(e) => {
                    setReport(null);
                    setTypes((xs) => (e.target.checked ? [...xs, t] : xs.filter((x) => x !== t)));
                  }}
                />{' '}
                {t}
              </label>
            ))}
          </fieldset>
          <div className="form-actions">
            <button type="button" className="button" disabled={busy || types.length === 0} onClick={() => void restore(true)}>
              Show what would change
            </button>
            {report?.dry_run && (
              <button type="button" className="button button-danger" disabled={busy} onClick={() => void restore(false)}>
                Restore these changes
              </button>
            )}
            <button type="button" className="button button-ghost" onClick={() => setRestoreFrom(null)}>
              Close
            </button>
          </div>
          {report && (
            <table className="table" aria-label={report.dry_run ? 'Dry run' : 'Restored'} data-testid="restore-report">
              <caption>{report.dry_run ? 'Dry run: nothing was changed yet' : 'Restored'}</caption>
              <thead>
                <tr>
                  <th>Entity type</th>
                  <th>Added back</th>
                  <th>Changed back</th>
                  <th>Removed</th>
                  <th>Unchanged</th>
                  <th>Skipped</th>
                </tr>
              </thead>
              <tbody>
                {report.entity_types.map((e) => (
                  <tr key={e.entity_type}>
                    <td>{e.entity_type}</td>
                    <td>{e.added.length}</td>
                    <td title={e.changed.map((c) => `${c.id}: ${c.fields.join(', ')}`).join('\n')}>{e.changed.length}</td>
                    <td>{e.removed.length}</td>
                    <td>{e.unchanged}</td>
                    <td title={e.skipped.map((s) => `${s.id}: ${s.reason}`).join('\n')}>{e.skipped.length}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      )}
      {schedule && (
        <section className="card" aria-labelledby="schedule">
          <h2 id="schedule">Schedule</h2>
          <form onSubmit={(e) => void saveSchedule(e)} className="form-grid">
            <label className="checkbox">
              <input type="checkbox" name="enabled" defaultChecked={schedule.enabled} /> Back up every day
            </label>
            <label>
              At (hour, UTC)
              <input type="number" name="hour_utc" min={0} max={23} defaultValue={schedule.hour_utc} required />
            </label>
            <label>
              Keep daily backups (days)
              <input type="number" name="daily_retention_days" min={1} max={3650} defaultValue={schedule.daily_retention_days} required />
            </label>
            <label>
              Keep weekly backups (days)
              <input type="number" name="weekly_retention_days" min={1} max={3650} defaultValue={schedule.weekly_retention_days} required />
            </label>
            <label>
              Keep monthly backups (days)
              <input type="number" name="monthly_retention_days" min={1} max={3650} defaultValue={schedule.monthly_retention_days} required />
            </label>
            <div className="form-actions">
              <button type="submit" className="button button-primary">
                Save schedule
              </button>
            </div>
          </form>
        </section>
      )}
    </>
  );
}
