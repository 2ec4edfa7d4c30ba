import { useState, type FormEvent } from 'react';
import { createDestination, testDestination, updateDestination } from '../../api/endpoints';
import type { CreateDestinationBody, Destination, DestinationTestResult, UpdateDestinationBody } from '../../api/types';
import { Field, useFieldErrors } from '../../components/Form';
import { Icon } from '../../components/Icons';
import { errorText } from '../../components/Toasts';
import { PLATFORMS, platform, platformClass, type PlatformId } from '../../lib/platforms';

export function PlatformMark({ id, size }: { id: string; size?: 'small' }) {
  return (
    <span className={`${platformClass(id)}${size ? ` platform-mark-${size}` : ''}`} aria-hidden="true">
      {platform(id).mark}
    </span>
  );
}

const FIELDS = ['name', 'platform', 'rtmp_url', 'stream_key', 'auto_start', 'enabled'] as const;

/**
 * Add or edit a destination: a platform preset fills in the name, default URL and instructions;
 * the key is masked, with a toggle that reveals it while typing. Editing never shows the stored
 * key: leave the field empty to keep it.
 */
export function DestinationForm({
  existing,
  onSaved,
  onCancel,
}: {
  existing?: Destination | undefined;
  onSaved: (d: Destination) => void;
  onCancel?: () => void;
}) {
  const [pid, setPid] = useState<PlatformId>((existing?.platform as PlatformId) ?? 'youtube');
  const p = platform(pid);
  const [name, setName] = useState(existing?.name ?? '');
  const [nameTouched, setNameTouched] = useState(Boolean(existing));
  const [url, setUrl] = useState(existing?.rtmp_url ?? '');
  const [key, setKey] = useState('');
  const [reveal, setReveal] = useState(false);
  const [autoStart, setAutoStart] = useState(existing?.auto_start ?? true);
  const [pending, setPending] = useState(false);
  const { errors, clear, report } = useFieldErrors(FIELDS);

  const shownName = nameTouched ? name : name || p.name;

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    if (pending) return;
    clear();
    setPending(true);
    try {
      let saved: Destination;
      if (existing) {
        const body: UpdateDestinationBody = { name: shownName.trim(), auto_start: autoStart };
        if (url.trim() !== existing.rtmp_url) body.rtmp_url = url.trim();
        if (key) body.stream_key = key;
        saved = await updateDestination(existing.id, body);
      } else {
        const body: CreateDestinationBody = {
          name: shownName.trim(),
          platform: pid,
          stream_key: key,
          auto_start: autoStart,
        };
        if (url.trim()) body.rtmp_url = url.trim();
        saved = await createDestination(body);
      }
      setKey('');
      setReveal(false);
      onSaved(saved);
    } catch (err) {
      report(err, 'The destination was not saved');
    } finally {
      setPending(false);
    }
  }

  return (
    <form className="form destination-form" onSubmit={onSubmit} noValidate aria-label={existing ? 'Edit destination' : 'Add destination'}>
      {!existing && (
        <fieldset className="platform-picker">
          <legend>Platform</legend>
          <div className="platform-options">
            {PLATFORMS.map((opt) => (
              <label key={opt.id} className={`platform-option${pid === opt.id ? ' selected' : ''}`}>
                <input
                  type="radio"
                  name="platform"
                  value={opt.id}
                  checked={pid === opt.id}
                  onChange={() => {
                    setPid(opt.id);
                    clear('platform');
                    clear('rtmp_url');
                  }}
                />
                <PlatformMark id={opt.id} />
                <span>{opt.name}</span>
              </label>
            ))}
          </div>
          {errors.platform && <p className="field-error">{errors.platform}</p>}
        </fieldset>
      )}

      <details className="how-to" open={!existing}>
        <summary>Where to find the {p.keyLabel.toLowerCase()} on {p.name}</summary>
        <ol className="steps">
          {p.steps.map((s) => (
            <li key={s}>{s}</li>
          ))}
        </ol>
      </details>

      <Field label="Name" error={errors.name}>
        {(props) => (
          <input
            {...props}
            name="name"
            value={shownName}
            maxLength={100}
            autoComplete="off"
            onChange={(e) => {
              setNameTouched(true);
              setName(e.target.value);
              clear('name');
            }}
          />
        )}
      </Field>

      <Field
        label="Server URL"
        aside={!p.urlRequired ? <span className="optional">optional</span> : undefined}
        error={errors.rtmp_url}
        hint={
          p.defaultUrl
            ? `Empty uses ${p.name}’s ingest: ${p.defaultUrl}`
            : 'rtmp://host[:port]/app or rtmps://…, without the stream key.'
        }
      >
        {(props) => (
          <input
            {...props}
            name="rtmp_url"
            className="mono"
            inputMode="url"
            spellCheck={false}
            autoComplete="off"
            placeholder={p.urlPlaceholder}
            value={url}
            onChange={(e) => {
              setUrl(e.target.value);
              clear('rtmp_url');
            }}
          />
        )}
      </Field>

      <Field
        label={p.keyLabel}
        error={errors.stream_key}
        hint={
          existing
            ? `Stored key ends in ${existing.stream_key_masked.replace(/^\*+/, '…')}. Leave empty to keep it.`
            : 'Stored encrypted; after saving only its last 4 characters are shown.'
        }
      >
        {(props) => (
          <div className="input-with-action">
            <input
              {...props}
              name="stream_key"
              className="mono"
              type={reveal ? 'text' : 'password'}
              autoComplete="off"
              spellCheck={false}
              value={key}
              onChange={(e) => {
                setKey(e.target.value);
                clear('stream_key');
              }}
            />
            <button
              type="button"
              className="input-action"
              onClick={() => setReveal((v) => !v)}
              aria-pressed={reveal}
              aria-label={reveal ? 'Hide stream key' : 'Show stream key'}
            >
              {reveal ? 'Hide' : 'Show'}
            </button>
          </div>
        )}
      </Field>

      <label className="check">
        <input type="checkbox" checked={autoStart} onChange={(e) => setAutoStart(e.target.checked)} />
        <span>
          Start with every session
          <span className="hint">“Start all” and sessions started without a choice include it.</span>
        </span>
      </label>

      <div className="form-actions">
        {onCancel && (
          <button type="button" className="button button-ghost" onClick={onCancel}>
            Cancel
          </button>
        )}
        <button type="submit" className="button button-primary" disabled={pending}>
          {pending ? 'Saving…' : existing ? 'Save changes' : 'Add destination'}
        </button>
      </div>
    </form>
  );
}

type TestState = { kind: 'idle' } | { kind: 'testing' } | { kind: 'done'; result: DestinationTestResult } | { kind: 'error'; message: string };

/** "Test connection": the server connects, offers the key and reports what the platform said. */
export function TestConnection({ destination }: { destination: Pick<Destination, 'id' | 'name'> }) {
  const [state, setState] = useState<TestState>({ kind: 'idle' });
  return (
    <div className="test-connection">
      <button
        type="button"
        className="button button-secondary button-small"
        disabled={state.kind === 'testing'}
        onClick={async () => {
          setState({ kind: 'testing' });
          try {
            setState({ kind: 'done', result: await testDestination(destination.id) });
          } catch (err) {
            setState({ kind: 'error', message: errorText(err) });
          }
        }}
        aria-label={`Test connection to ${destination.name}`}
      >
        <Icon name="plug" size={16} />
        {state.kind === 'testing' ? 'Testing…' : 'Test connection'}
      </button>
      <span className="test-result" role="status" aria-live="polite">
        {state.kind === 'done' &&
          (state.result.ok ? (
            <span className="ok-text">
              <Icon name="check" size={16} /> Accepted
              {state.result.latency_ms != null ? ` in ${state.result.latency_ms} ms` : ''}
            </span>
          ) : (
            <span className="bad-text">
              <Icon name="alert" size={16} /> {state.result.error ?? 'The server refused the connection.'}
            </span>
          ))}
        {state.kind === 'error' && (
          <span className="bad-text">
            <Icon name="alert" size={16} /> {state.message}
          </span>
        )}
      </span>
    </div>
  );
}
