import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../../api/client';
import { clonePreset, createPreset, deletePreset, exportPresets, importPresets, listPresets, updatePreset } from '../../api/endpoints';
import type { Preset, PresetImportReport, PresetInput } from '../../api/types';
import { Loading } from '../../auth/RequireAuth';
import { Field } from '../../components/Form';
import { Icon } from '../../components/Icons';
import { capitalise, errorText, useToast } from '../../components/Toasts';
import { EmptyState, Modal, PageHeader } from '../../components/ui';
import { humanize } from '../../lib/format';
import { PlatformMark } from '../stream/DestinationForm';
import { useDocumentTitle } from '../../useDocumentTitle';

const PLATFORMS = [
  { id: 'youtube', label: 'YouTube' },
  { id: 'x', label: 'X' },
  { id: 'linkedin', label: 'LinkedIn' },
  { id: 'custom', label: 'Custom' },
];

/** Height → the 16:9 width the server wants with it. */
const WIDTH: Record<number, number> = { 480: 854, 720: 1280, 1080: 1920, 1440: 2560, 2160: 3840 };

function blank(): PresetInput {
  return {
    name: '',
    platform: 'custom',
    allow_480p: false,
    video: {
      codec: 'h264',
      profile: 'high',
      width: 1920,
      height: 1080,
      fps: 30,
      bitrate_kbps: 6000,
      keyframe_interval_s: 2,
      b_frames: 2,
      rate_control: 'cbr',
    },
    audio: { codec: 'aac', bitrate_kbps: 128, sample_rate: 48000, channels: 2 },
  };
}

function inputOf(p: Preset): PresetInput {
  return { name: p.name, platform: p.platform, allow_480p: p.allow_480p, video: { ...p.video }, audio: { ...p.audio } };
}

/** Downloads `data` as a JSON file named `name`. */
function download(name: string, data: unknown) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function PresetsPage() {
  useDocumentTitle('Encoding presets');
  const toast = useToast();
  const [items, setItems] = useState<Preset[] | null>(null);
  const [editing, setEditing] = useState<{ preset?: Preset; draft: PresetInput } | null>(null);
  const [report, setReport] = useState<PresetImportReport | null>(null);
  const [withBuiltin, setWithBuiltin] = useState(false);
  const fileRef = useRef<HTMLInputElement>(null);

  const load = useCallback(async () => {
    try {
      setItems((await listPresets()).items);
    } catch (err) {
      toast.error(err, 'The presets could not be loaded');
      setItems([]);
    }
  }, [toast]);

  useEffect(() => {
    void load();
  }, [load]);

  async function onClone(p: Preset) {
    try {
      const copy = await clonePreset(p.id);
      toast.success(`Cloned as “${copy.name}”`);
      await load();
      setEditing({ preset: copy, draft: inputOf(copy) });
    } catch (err) {
      toast.error(err, 'The preset could not be cloned');
    }
  }

  async function onDelete(p: Preset) {
    if (!window.confirm(`Delete the preset “${p.name}”?`)) return;
    try {
      await deletePreset(p.id);
      toast.success(`Deleted “${p.name}”`);
      await load();
    } catch (err) {
      toast.error(err, 'The preset could not be deleted');
    }
  }

  async function onExport() {
    try {
      const doc = await exportPresets(withBuiltin);
      download(`lunora-presets-${new Date().toISOString().slice(0, 10)}.json`, doc);
      toast.success(`Exported ${doc.presets.length} preset${doc.presets.length === 1 ? '' : 's'}`);
    } catch (err) {
      toast.error(err, 'The export failed');
    }
  }

  async function onImport(file: File) {
    let doc: unknown;
    try {
      doc = JSON.parse(await file.text());
    } catch {
      toast.error(new Error(`${file.name} is not a JSON file.`), 'Nothing was imported');
      return;
    }
    try {
      const r = await importPresets(doc, 'rename');
      setReport(r);
      await load();
    } catch (err) {
      toast.error(err, 'The import was refused');
    }
  }

  const builtins = items?.filter((p) => p.builtin) ?? [];
  const custom = items?.filter((p) => !p.builtin) ?? [];

  return (
    <>
      <PageHeader
        title="Encoding presets"
        lead="What the transcoder makes for each destination. Built-in platform presets are read-only: clone one to change it."
        actions={
          <>
            <button type="button" className="button button-primary" onClick={() => setEditing({ draft: blank() })}>
              <Icon name="plus" size={16} /> New preset
            </button>
          </>
        }
      />

      <div className="toolbar card soft preset-tools">
        <label className="check">
          <input type="checkbox" checked={withBuiltin} onChange={(e) => setWithBuiltin(e.target.checked)} />
          <span>Include built-ins in the export</span>
        </label>
        <button type="button" className="button button-secondary button-small" onClick={onExport}>
          <Icon name="download" size={16} /> Export as JSON
        </button>
        <button type="button" className="button button-secondary button-small" onClick={() => fileRef.current?.click()}>
          <Icon name="plus" size={16} /> Import from JSON
        </button>
        <input
          ref={fileRef}
          type="file"
          accept="application/json,.json"
          className="visually-hidden"
          aria-label="Preset file to import"
          data-testid="preset-import-file"
          tabIndex={-1}
          onChange={(e) => {
            const f = e.target.files?.[0];
            e.target.value = '';
            if (f) void onImport(f);
          }}
        />
      </div>

      {report && (
        <div className="notice notice-info" role="status" data-testid="preset-import-report">
          <p>
            <strong>
              Import: {report.created} created, {report.skipped} skipped, {report.invalid} invalid.
            </strong>
          </p>
          <ul className="small">
            {report.items.map((i) => (
              <li key={i.index}>
                {i.name ?? `#${i.index + 1}`}: {humanize(i.status)}
                {i.detail ? ` — ${i.field ? `${i.field}: ` : ''}${i.detail}` : ''}
              </li>
            ))}
          </ul>
          <button type="button" className="button button-ghost button-small" onClick={() => setReport(null)}>
            Dismiss
          </button>
        </div>
      )}

      {items === null ? (
        <Loading />
      ) : (
        <>
          <section className="section" aria-labelledby="custom-presets">
            <h2 id="custom-presets" className="section-title">
              Your presets
            </h2>
            {custom.length === 0 ? (
              <EmptyState icon="sliders" title="No presets of your own yet">
                Create one, or clone a built-in below.
              </EmptyState>
            ) : (
              <PresetTable items={custom} onEdit={(p) => setEditing({ preset: p, draft: inputOf(p) })} onClone={onClone} onDelete={onDelete} />
            )}
          </section>
          <section className="section" aria-labelledby="builtin-presets">
            <h2 id="builtin-presets" className="section-title">
              Built-in presets
            </h2>
            <PresetTable items={builtins} onClone={onClone} />
          </section>
        </>
      )}

      <Modal
        open={editing !== null}
        wide
        title={editing?.preset ? `Edit “${editing.preset.name}”` : 'New preset'}
        onClose={() => setEditing(null)}
      >
        {editing && (
          <PresetForm
            existing={editing.preset}
            initial={editing.draft}
            onSaved={async (p) => {
              setEditing(null);
              toast.success(editing.preset ? `Saved “${p.name}”` : `Created “${p.name}”`);
              await load();
            }}
            onCancel={() => setEditing(null)}
          />
        )}
      </Modal>
    </>
  );
}

function PresetTable({
  items,
  onEdit,
  onClone,
  onDelete,
}: {
  items: Preset[];
  onEdit?: (p: Preset) => void;
  onClone: (p: Preset) => void;
  onDelete?: (p: Preset) => void;
}) {
  return (
    <div className="table-wrap">
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Platform</th>
            <th scope="col">Output</th>
            <th scope="col">Codecs</th>
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {items.map((p) => (
            <tr key={p.id} data-preset={p.name}>
              <td>
                <strong>{p.name}</strong>
                {p.builtin && <span className="badge badge-neutral small-badge">Built-in</span>}
              </td>
              <td>
                <span className="cell-with-mark">
                  <PlatformMark id={p.platform} size="small" />
                  {PLATFORMS.find((x) => x.id === p.platform)?.label ?? humanize(p.platform)}
                </span>
              </td>
              <td className="nowrap" data-testid="preset-summary">
                {p.summary}
              </td>
              <td className="small muted">
                {p.video.codec.toUpperCase()} {p.video.profile} · {p.audio.codec.toUpperCase()} {p.audio.bitrate_kbps} kb/s
              </td>
              <td>
                <div className="row-actions">
                  {onEdit && (
                    <button type="button" className="button button-secondary button-small" onClick={() => onEdit(p)} aria-label={`Edit ${p.name}`}>
                      <Icon name="edit" size={16} /> Edit
                    </button>
                  )}
                  <button type="button" className="button button-secondary button-small" onClick={() => onClone(p)} aria-label={`Clone ${p.name}`}>
                    <Icon name="copy" size={16} /> Clone
                  </button>
                  {onDelete && (
                    <button type="button" className="button button-ghost button-small" onClick={() => onDelete(p)} aria-label={`Delete ${p.name}`}>
                      <Icon name="trash" size={16} />
                    </button>
                  )}
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The form's fields, named like the server's `field` paths (width errors show under the resolution). */
type FieldKey =
  | 'name'
  | 'platform'
  | 'video.codec'
  | 'video.profile'
  | 'video.height'
  | 'video.fps'
  | 'video.bitrate_kbps'
  | 'video.keyframe_interval_s'
  | 'video.b_frames'
  | 'video.rate_control'
  | 'audio.codec'
  | 'audio.bitrate_kbps'
  | 'audio.sample_rate'
  | 'audio.channels';

function fieldKey(field: string): FieldKey | null {
  const f = field.replace(/^preset\./, '');
  if (f === 'video.width' || f === 'allow_480p') return 'video.height';
  const known: FieldKey[] = [
    'name',
    'platform',
    'video.codec',
    'video.profile',
    'video.height',
    'video.fps',
    'video.bitrate_kbps',
    'video.keyframe_interval_s',
    'video.b_frames',
    'video.rate_control',
    'audio.codec',
    'audio.bitrate_kbps',
    'audio.sample_rate',
    'audio.channels',
  ];
  return known.find((k) => k === f || f.startsWith(`${k}.`)) ?? null;
}

function PresetForm({
  existing,
  initial,
  onSaved,
  onCancel,
}: {
  existing?: Preset | undefined;
  initial: PresetInput;
  onSaved: (p: Preset) => void;
  onCancel: () => void;
}) {
  const toast = useToast();
  const [d, setD] = useState<PresetInput>(initial);
  const [errors, setErrors] = useState<Partial<Record<FieldKey, string | undefined>>>({});
  const [other, setOther] = useState<string | null>(null);
  const [pending, setPending] = useState(false);

  const setVideo = (k: keyof PresetInput['video'], v: string | number) => {
    setD((x) => ({ ...x, video: { ...x.video, [k]: v } }));
    setErrors((e) => ({ ...e, [`video.${k}`]: undefined }));
  };
  const setAudio = (k: keyof PresetInput['audio'], v: string | number) => {
    setD((x) => ({ ...x, audio: { ...x.audio, [k]: v } }));
    setErrors((e) => ({ ...e, [`audio.${k}`]: undefined }));
  };
  const int = (s: string) => (s.trim() === '' ? Number.NaN : Number(s));

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    setErrors({});
    setOther(null);
    setPending(true);
    try {
      const body: PresetInput = { ...d, name: d.name.trim() };
      onSaved(existing ? await updatePreset(existing.id, body, existing.version) : await createPreset(body));
    } catch (err) {
      const key = err instanceof ApiError && err.field ? fieldKey(err.field) : null;
      if (key && err instanceof ApiError) {
        setErrors({ [key]: capitalise(err.problem.detail ?? errorText(err)) });
        document.querySelector<HTMLElement>(`[name="${key}"]`)?.focus();
      } else if (err instanceof ApiError && err.status === 400) {
        setOther(capitalise(errorText(err)));
      } else {
        toast.error(err, 'The preset was not saved');
      }
    } finally {
      setPending(false);
    }
  }

  const select = (key: FieldKey, label: string, value: string | number, options: (string | number)[][], onChange: (v: string) => void) => (
    <Field label={label} error={errors[key]}>
      {(props) => (
        <select {...props} name={key} value={String(value)} onChange={(e) => onChange(e.target.value)}>
          {options.map(([v, l]) => (
            <option key={String(v)} value={String(v)}>
              {l}
            </option>
          ))}
        </select>
      )}
    </Field>
  );
  const number = (key: FieldKey, label: string, value: number, onChange: (v: number) => void, hint?: string) => (
    <Field label={label} error={errors[key]} hint={hint}>
      {(props) => (
        <input
          {...props}
          name={key}
          type="number"
          inputMode="numeric"
          value={Number.isNaN(value) ? '' : value}
          onChange={(e) => onChange(int(e.target.value))}
        />
      )}
    </Field>
  );

  return (
    <form className="form preset-form" onSubmit={onSubmit} aria-label={existing ? 'Edit preset' : 'New preset'} noValidate>
      {other && (
        <p className="notice notice-error" role="alert">
          {other}
        </p>
      )}
      <div className="two-col">
        <Field label="Name" error={errors.name}>
          {(props) => (
            <input
              {...props}
              name="name"
              value={d.name}
              maxLength={120}
              autoComplete="off"
              onChange={(e) => {
                setD((x) => ({ ...x, name: e.target.value }));
                setErrors((er) => ({ ...er, name: undefined }));
              }}
            />
          )}
        </Field>
        {select('platform', 'Platform', d.platform, PLATFORMS.map((p) => [p.id, p.label]), (v) => setD((x) => ({ ...x, platform: v })))}
      </div>
      <fieldset className="fieldset">
        <legend>Video</legend>
        <div className="two-col">
          {select('video.codec', 'Video codec', d.video.codec, [['h264', 'H.264'], ['h265', 'H.265 (HEVC)']], (v) => setVideo('codec', v))}
          {select('video.profile', 'Profile', d.video.profile, [['baseline', 'Baseline'], ['main', 'Main'], ['high', 'High']], (v) => setVideo('profile', v))}
          {select(
            'video.height',
            'Resolution',
            d.video.height,
            [
              [480, '854×480 (480p)'],
              [720, '1280×720 (720p)'],
              [1080, '1920×1080 (1080p)'],
              [1440, '2560×1440 (1440p)'],
              [2160, '3840×2160 (4K)'],
            ],
            (v) => {
              const h = Number(v);
              setD((x) => ({ ...x, allow_480p: h === 480 ? true : (x.allow_480p ?? false), video: { ...x.video, height: h, width: WIDTH[h] ?? x.video.width } }));
              setErrors((e) => ({ ...e, 'video.height': undefined }));
            },
          )}
          {select('video.fps', 'Frame rate', d.video.fps, [[24, '24 fps'], [30, '30 fps'], [60, '60 fps']], (v) => setVideo('fps', Number(v)))}
          {number('video.bitrate_kbps', 'Video bitrate (kb/s)', d.video.bitrate_kbps, (v) => setVideo('bitrate_kbps', v), '1000–10000 kb/s; up to 20000 at 4K.')}
          {number('video.keyframe_interval_s', 'Keyframe interval (seconds)', d.video.keyframe_interval_s, (v) => setVideo('keyframe_interval_s', v), '1–4 seconds.')}
          {number('video.b_frames', 'B-frames', d.video.b_frames, (v) => setVideo('b_frames', v), '0–4; none with the baseline profile.')}
          {select('video.rate_control', 'Rate control', d.video.rate_control, [['cbr', 'Constant (CBR)'], ['vbr', 'Variable (VBR)']], (v) => setVideo('rate_control', v))}
        </div>
      </fieldset>
      <fieldset className="fieldset">
        <legend>Audio</legend>
        <div className="two-col">
          {select('audio.codec', 'Audio codec', d.audio.codec, [['aac', 'AAC'], ['mp3', 'MP3']], (v) => setAudio('codec', v))}
          {number('audio.bitrate_kbps', 'Audio bitrate (kb/s)', d.audio.bitrate_kbps, (v) => setAudio('bitrate_kbps', v), '64–320 kb/s.')}
          {select('audio.sample_rate', 'Sample rate', d.audio.sample_rate, [[44100, '44.1 kHz'], [48000, '48 kHz']], (v) => setAudio('sample_rate', Number(v)))}
          {select('audio.channels', 'Channels', d.audio.channels, [[2, 'Stereo'], [1, 'Mono']], (v) => setAudio('channels', Number(v)))}
        </div>
      </fieldset>
      <div className="form-actions">
        <button type="button" className="button button-ghost" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="button button-primary" disabled={pending}>
          {pending ? 'Saving…' : existing ? 'Save preset' : 'Create preset'}
        </button>
      </div>
    </form>
  );
}
