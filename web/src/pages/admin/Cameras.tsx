import { useCallback, useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { Link, useParams } from 'react-router';
import {
  createPlayToken,
  getCamera,
  getCameraStatus,
  getRecordingSettings,
  importCameras,
  listCameras,
  putRecordingSettings,
  rotateCameraKey,
  thumbnailUrl,
} from '../../api/endpoints';
import type { Camera, CameraImportReport, CameraStatus, RecordingSettings } from '../../api/types';
import { Loading } from '../../auth/RequireAuth';
import { HlsPlayer } from '../../components/HlsPlayer';
import { Icon } from '../../components/Icons';
import { useToast } from '../../components/Toasts';
import { CopyField, EmptyState, Modal, PageHeader } from '../../components/ui';
import { formatBitrate, formatDateTime, formatTime } from '../../lib/format';
import { useEvents } from '../../live/events';
import { useDocumentTitle } from '../../useDocumentTitle';
import { LiveIndicator } from './Sources';
import { RecordingsTable } from './Recordings';
import { RecordingTimeline } from './RecordingTimeline';

/** Thumbnails of online cameras are fetched again this often. */
const THUMB_MS = 5000;
/** Figures (bitrate, fps) of online cameras; online/offline itself arrives as events. */
const FIGURES_MS = 5000;

interface CameraEventData {
  camera_id?: string;
  online?: boolean;
  since?: string;
}

export function CameraBadge({ online }: { online: boolean }) {
  return (
    <span className={`badge ${online ? 'badge-ok' : 'badge-neutral'}`} data-testid="camera-badge" data-online={online}>
      <span className={`badge-dot${online ? ' pulse' : ''}`} aria-hidden="true" />
      {online ? 'Online' : 'Offline'}
    </span>
  );
}

/** A JPEG of the camera's newest keyframe, refreshed while it is online. */
function Thumbnail({ channelId, online, name }: { channelId: string; online: boolean; name: string }) {
  const [tick, setTick] = useState(0);
  const [loaded, setLoaded] = useState(false);
  useEffect(() => {
    if (!online) {
      setLoaded(false);
      return;
    }
    // The first ask starts the thumbnail decoder; ask again soon, then every few seconds.
    const first = window.setTimeout(() => setTick((t) => t + 1), 1500);
    const t = window.setInterval(() => setTick((n) => n + 1), THUMB_MS);
    return () => {
      window.clearTimeout(first);
      window.clearInterval(t);
    };
  }, [online]);
  return (
    <div className="thumb">
      {online && (
        <img
          src={`${thumbnailUrl(channelId)}?t=${tick}`}
          alt={`Live picture of ${name}`}
          data-testid="camera-thumb"
          data-loaded={loaded}
          onLoad={() => setLoaded(true)}
          onError={() => {
            /* not decoded yet: keep the last picture, the next tick asks again */
          }}
          style={loaded ? undefined : { visibility: 'hidden' }}
        />
      )}
      {!loaded && (
        <span className="thumb-empty" aria-hidden="true">
          <Icon name="camera" size={28} />
          <span className="small">{online ? 'Waiting for a picture…' : 'No signal'}</span>
        </span>
      )}
    </div>
  );
}

export function CamerasPage() {
  useDocumentTitle('Cameras');
  const toast = useToast();
  const [items, setItems] = useState<Camera[] | null>(null);
  const [importing, setImporting] = useState(false);
  const [q, setQ] = useState('');

  const load = useCallback(async () => {
    try {
      const all: Camera[] = [];
      let cursor: string | undefined;
      do {
        const page = await listCameras(undefined, { cursor });
        all.push(...page.items);
        cursor = page.next_cursor ?? undefined;
      } while (cursor && all.length < 2000);
      setItems(all);
    } catch (err) {
      toast.error(err, 'The cameras could not be loaded');
      setItems((x) => x ?? []);
    }
  }, [toast]);

  useEffect(() => {
    void load();
  }, [load]);

  const patchStatus = useCallback((id: string, patch: Partial<CameraStatus>) => {
    setItems((xs) => xs?.map((c) => (c.id === id ? { ...c, status: { ...c.status, ...patch } } : c)) ?? xs);
  }, []);

  // Online/offline moves the badge at once; the figures follow from the status call.
  useEvents(['org'], (e) => {
    if (e.type === 'resync') {
      void load();
      return;
    }
    if (e.type !== 'camera.status') return;
    const d = e.data as CameraEventData;
    if (!d.camera_id) return;
    patchStatus(d.camera_id, { online: Boolean(d.online), since: d.since ?? null });
    getCameraStatus(d.camera_id)
      .then((s) => patchStatus(d.camera_id!, s))
      .catch(() => {});
  });

  // Figures of the online ones.
  const itemsRef = useRef(items);
  itemsRef.current = items;
  useEffect(() => {
    const t = window.setInterval(() => {
      if (document.visibilityState !== 'visible') return;
      for (const c of itemsRef.current ?? []) {
        if (!c.status.online) continue;
        getCameraStatus(c.id)
          .then((s) => patchStatus(c.id, s))
          .catch(() => {});
      }
    }, FIGURES_MS);
    return () => window.clearInterval(t);
  }, [patchStatus]);

  const shown = (items ?? []).filter((c) => {
    const needle = q.trim().toLowerCase();
    return !needle || [c.name, c.location, c.brand, c.model, ...c.tags].some((s) => s.toLowerCase().includes(needle));
  });
  const online = (items ?? []).filter((c) => c.status.online).length;

  return (
    <>
      <PageHeader
        title="Cameras"
        lead={items ? `${online} of ${items.length} online` : 'Every camera, live.'}
        actions={
          <>
            <LiveIndicator />
            <Link className="button button-secondary" to="/admin/recordings">
              <Icon name="history" size={16} /> Recordings
            </Link>
            <button type="button" className="button button-primary" onClick={() => setImporting(true)}>
              <Icon name="plus" size={16} /> Import from CSV
            </button>
          </>
        }
      />
      {items && items.length > 0 && (
        <div className="search">
          <label className="visually-hidden" htmlFor="camera-search">
            Filter cameras
          </label>
          <input id="camera-search" type="search" placeholder="Filter by name, location, tag…" value={q} onChange={(e) => setQ(e.target.value)} />
        </div>
      )}
      {items === null ? (
        <Loading />
      ) : items.length === 0 ? (
        <EmptyState
          icon="camera"
          title="No cameras yet"
          action={
            <button type="button" className="button button-primary" onClick={() => setImporting(true)}>
              Import from CSV
            </button>
          }
        >
          Import a list of cameras; each gets its own publish URL.
        </EmptyState>
      ) : (
        <ul className="camera-grid" aria-label="Cameras">
          {shown.map((c) => (
            <li key={c.id} className="camera-tile card" data-camera={c.name} data-online={c.status.online}>
              <Link to={`/admin/cameras/${c.id}`} className="camera-link" aria-label={`${c.name}, ${c.status.online ? 'online' : 'offline'}`}>
                <Thumbnail channelId={c.channel_id} online={c.status.online} name={c.name} />
              </Link>
              <div className="camera-meta">
                <div className="camera-title">
                  <Link to={`/admin/cameras/${c.id}`}>
                    <strong>{c.name}</strong>
                  </Link>
                  <CameraBadge online={c.status.online} />
                </div>
                <p className="small muted">
                  {[c.location, [c.brand, c.model].filter(Boolean).join(' ')].filter(Boolean).join(' · ') || '—'}
                </p>
                <p className="small" data-testid="camera-figures">
                  {c.status.online
                    ? `${formatBitrate(c.status.bitrate_bps)} · ${c.status.fps ? c.status.fps.toFixed(0) : '–'} fps${c.status.width ? ` · ${c.status.width}×${c.status.height}` : ''}`
                    : c.status.since
                      ? `Offline since ${formatDateTime(c.status.since)}`
                      : 'Never seen'}
                </p>
              </div>
            </li>
          ))}
        </ul>
      )}
      <Modal open={importing} wide title="Import cameras from CSV" onClose={() => setImporting(false)}>
        <CsvImport onImported={() => void load()} />
      </Modal>
    </>
  );
}

const SAMPLE = 'name,brand,model,serial_number,location,tags,recording_policy\nLobby,Axis,P1375,SN-1,HQ,entrance;indoor,off\n';

/** The `name` column of each data row, to label the report (the server's rows carry numbers). */
function namesOf(csv: string): string[] {
  const lines = csv.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = (lines[0] ?? '').split(',').map((h) => h.trim().toLowerCase().replace(/^"|"$/g, ''));
  const at = header.indexOf('name');
  return lines.slice(1).map((l) => (at >= 0 ? (l.split(',')[at] ?? '').trim().replace(/^"|"$/g, '') : ''));
}

function CsvImport({ onImported }: { onImported: () => void }) {
  const toast = useToast();
  const fileId = useId();
  const textId = useId();
  const [text, setText] = useState('');
  const [report, setReport] = useState<CameraImportReport | null>(null);
  const [names, setNames] = useState<string[]>([]);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    if (!text.trim()) {
      setError('Choose a CSV file or paste its text.');
      return;
    }
    setPending(true);
    try {
      const r = await importCameras(text);
      setNames(namesOf(text));
      setReport(r);
      onImported();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      toast.error(err, 'The CSV was refused');
    } finally {
      setPending(false);
    }
  }

  return (
    <div className="csv-import">
      <form className="form" onSubmit={onSubmit} aria-label="Import cameras">
        <div className="field">
          <div className="field-label">
            <label htmlFor={fileId}>CSV file</label>
          </div>
          <input
            id={fileId}
            type="file"
            accept=".csv,text/csv"
            data-testid="camera-csv-file"
            onChange={async (e) => {
              const f = e.target.files?.[0];
              if (f) setText(await f.text());
            }}
          />
          <p className="hint">
            Columns: <code>name</code> (required), brand, model, serial_number, location, tags (separated by <code>;</code>),
            recording_policy (<code>off</code> or <code>continuous</code>), enabled.
          </p>
        </div>
        <div className="field">
          <div className="field-label">
            <label htmlFor={textId}>…or paste the CSV</label>
          </div>
          <textarea
            id={textId}
            className="mono"
            rows={6}
            value={text}
            placeholder={SAMPLE}
            spellCheck={false}
            aria-invalid={error ? true : undefined}
            onChange={(e) => setText(e.target.value)}
          />
          {error && <p className="field-error">{error}</p>}
        </div>
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={pending}>
            {pending ? 'Importing…' : 'Import cameras'}
          </button>
        </div>
      </form>

      {report && (
        <section aria-labelledby="import-report" className="modal-section" data-testid="camera-import-report">
          <h3 id="import-report">
            {report.created} created, {report.failed} failed
          </h3>
          <p className="small muted">Each publish URL is shown only now: copy it into the camera or its encoder.</p>
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Row</th>
                  <th scope="col">Camera</th>
                  <th scope="col">Result</th>
                </tr>
              </thead>
              <tbody>
                {report.rows.map((r) => (
                  <tr key={r.row} data-row={r.row} data-ok={r.ok} data-name={names[r.row - 1] ?? ''}>
                    <td>{r.row}</td>
                    <td>{names[r.row - 1] || '—'}</td>
                    <td>
                      {r.ok ? (
                        r.publish_url ? (
                          <CopyField label={`Publish URL of ${names[r.row - 1] || `row ${r.row}`}`} value={r.publish_url} secret testId="import-publish-url" />
                        ) : (
                          <span className="badge badge-ok">Created</span>
                        )
                      ) : (
                        <span className="danger-text" data-testid="import-row-error">
                          {r.field ? <strong>{r.field}: </strong> : null}
                          {r.error}
                        </span>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      )}
    </div>
  );
}

export function CameraPage() {
  const { cameraId = '' } = useParams();
  const toast = useToast();
  const [camera, setCamera] = useState<Camera | null>(null);
  const [missing, setMissing] = useState(false);
  const [src, setSrc] = useState<string | null>(null);
  const [rec, setRec] = useState<RecordingSettings | null>(null);
  const [newUrl, setNewUrl] = useState<string | null>(null);
  const [recordingsKey, setRecordingsKey] = useState(0);
  useDocumentTitle(camera ? camera.name : 'Camera');

  const refreshStatus = useCallback(async () => {
    try {
      const s = await getCameraStatus(cameraId);
      setCamera((c) => (c ? { ...c, status: s } : c));
    } catch {
      // next event or tick
    }
  }, [cameraId]);

  useEffect(() => {
    const ctrl = new AbortController();
    getCamera(cameraId, ctrl.signal)
      .then((c) => {
        setCamera(c);
        getRecordingSettings(c.channel_id)
          .then(setRec)
          .catch(() => {});
      })
      .catch((err) => {
        if (ctrl.signal.aborted) return;
        setMissing(true);
        toast.error(err, 'The camera could not be loaded');
      });
    const t = window.setInterval(() => {
      if (document.visibilityState === 'visible') void refreshStatus();
    }, FIGURES_MS);
    return () => {
      ctrl.abort();
      window.clearInterval(t);
    };
  }, [cameraId, toast, refreshStatus]);

  useEvents([`camera:${cameraId}`], (e) => {
    if (e.type !== 'camera.status') return;
    const d = e.data as CameraEventData;
    setCamera((c) => (c ? { ...c, status: { ...c.status, online: Boolean(d.online), since: d.since ?? null } } : c));
    void refreshStatus();
    // A recording may just have started or ended.
    setRecordingsKey((k) => k + 1);
    if (camera) getRecordingSettings(camera.channel_id).then(setRec).catch(() => {});
  });

  // The live player: a play token for the channel's HLS, fetched when the camera is online.
  const online = camera?.status.online ?? false;
  const channelId = camera?.channel_id;
  useEffect(() => {
    if (!online || !channelId) {
      setSrc(null);
      return;
    }
    let cancelled = false;
    createPlayToken(channelId)
      .then((t) => {
        if (!cancelled) setSrc(`/hls/${encodeURIComponent(channelId)}/index.m3u8?token=${encodeURIComponent(t.token)}`);
      })
      .catch((err) => toast.error(err, 'The live picture is not available'));
    return () => {
      cancelled = true;
    };
  }, [online, channelId, toast]);

  if (missing) return <EmptyState icon="camera" title="No such camera" action={<Link to="/admin/cameras">All cameras</Link>} />;
  if (!camera) return <Loading />;

  async function toggleRecording(enabled: boolean) {
    if (!camera) return;
    const before = rec;
    setRec((r) => (r ? { ...r, enabled } : r));
    try {
      setRec(await putRecordingSettings(camera.channel_id, enabled));
      toast.success(enabled ? 'Recording continuously' : 'Recording turned off');
      window.setTimeout(() => setRecordingsKey((k) => k + 1), 2500);
    } catch (err) {
      setRec(before);
      toast.error(err, 'The recording setting was refused');
    }
  }

  async function rotate() {
    if (!camera || !window.confirm(`Give ${camera.name} a new publish key? The old one stops working at once.`)) return;
    try {
      const c = await rotateCameraKey(camera.id);
      setCamera(c);
      setNewUrl(c.publish_url);
    } catch (err) {
      toast.error(err, 'The key was not rotated');
    }
  }

  const s = camera.status;
  return (
    <>
      <Link className="back-link" to="/admin/cameras">
        ← All cameras
      </Link>
      <PageHeader title={camera.name} lead={[camera.location, camera.brand, camera.model].filter(Boolean).join(' · ')} actions={<CameraBadge online={s.online} />} />
      <div className="camera-page">
        <section className="card" aria-labelledby="live-heading">
          <h2 id="live-heading" className="card-title">
            Live
          </h2>
          {online && src ? (
            <HlsPlayer src={src} label={`Live video of ${camera.name}`} live testId="live-player" />
          ) : (
            <div className="thumb">
              <span className="thumb-empty">
                <Icon name="camera" size={28} />
                <span className="small">{online ? 'Starting the player…' : 'The camera is offline'}</span>
              </span>
            </div>
          )}
          <dl className="kv small">
            <dt>Status</dt>
            <dd data-testid="camera-status">{s.online ? `Online since ${formatTime(s.since)}` : s.since ? `Offline since ${formatDateTime(s.since)}` : 'Never seen'}</dd>
            <dt>Bitrate</dt>
            <dd>{s.online ? formatBitrate(s.bitrate_bps) : '—'}</dd>
            <dt>Frame rate</dt>
            <dd>{s.online && s.fps ? `${s.fps.toFixed(1)} fps` : '—'}</dd>
            <dt>Resolution</dt>
            <dd>{s.width ? `${s.width}×${s.height}` : '—'}</dd>
            <dt>Codec</dt>
            <dd>{s.codec ?? '—'}</dd>
          </dl>
        </section>
        <section className="card" aria-labelledby="setup-heading">
          <h2 id="setup-heading" className="card-title">
            Setup
          </h2>
          <label className="check">
            <input type="checkbox" checked={rec?.enabled ?? false} disabled={!rec} onChange={(e) => toggleRecording(e.target.checked)} />
            <span>Record continuously{rec?.recording && camera.status.online ? ' (recording now)' : ''}</span>
          </label>
          {newUrl ? (
            <CopyField label="New publish URL (shown once)" value={newUrl} secret />
          ) : (
            <dl className="kv small">
              <dt>Publish URL</dt>
              <dd className="mono break">{camera.publish_url}</dd>
            </dl>
          )}
          <p>
            <button type="button" className="button button-secondary button-small" onClick={rotate}>
              <Icon name="retry" size={16} /> New publish key
            </button>
          </p>
          <dl className="kv small">
            <dt>Serial number</dt>
            <dd>{camera.serial_number || '—'}</dd>
            <dt>Tags</dt>
            <dd>{camera.tags.join(', ') || '—'}</dd>
          </dl>
        </section>
      </div>
      <section className="section" aria-labelledby="recordings-heading">
        <div className="section-head">
          <h2 id="recordings-heading" className="section-title">
            Recordings
          </h2>
          <Link to={`/admin/recordings?channel_id=${encodeURIComponent(camera.channel_id)}`}>All recordings of this camera</Link>
        </div>
        <RecordingTimeline channelId={camera.channel_id} refreshMs={5000} />
        <RecordingsTable key={recordingsKey} filter={{ channel_id: camera.channel_id }} names={{ [camera.channel_id]: camera.name }} refreshMs={5000} />
      </section>
    </>
  );
}
