import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router';
import { createChannel, getDestinationsHealth, listChannels } from '../../api/endpoints';
import type { Channel, InputStatus } from '../../api/types';
import { Loading } from '../../auth/RequireAuth';
import { Field, useFieldErrors } from '../../components/Form';
import { Icon } from '../../components/Icons';
import { useToast } from '../../components/Toasts';
import { EmptyState, Modal, PageHeader } from '../../components/ui';
import { formatAgo, formatBitrate } from '../../lib/format';
import { useDocumentTitle } from '../../useDocumentTitle';
import { StreamKeyModal } from './publish';

export function inputOf(ch: Pick<Channel, 'status'>): InputStatus {
  const s = ch.status as Partial<InputStatus> | null | undefined;
  return { input_state: 'idle', ...(s && typeof s === 'object' ? s : {}) } as InputStatus;
}

/** Form to create a channel; calls `onCreated` with the answer (which holds the key once). */
export function CreateChannelForm({
  onCreated,
  submitLabel = 'Create channel',
  autoFocus,
}: {
  onCreated: (ch: Channel) => void;
  submitLabel?: string;
  autoFocus?: boolean;
}) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [pending, setPending] = useState(false);
  const { errors, clear, report } = useFieldErrors(['name', 'description'] as const);

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    if (pending) return;
    setPending(true);
    clear();
    try {
      const body: { name: string; description?: string } = { name: name.trim() };
      if (description.trim()) body.description = description.trim();
      onCreated(await createChannel(body));
    } catch (err) {
      report(err, 'The channel was not created');
    } finally {
      setPending(false);
    }
  }

  return (
    <form className="form" onSubmit={onSubmit} noValidate>
      <Field label="Channel name" error={errors.name} hint="What your team calls this stream, e.g. “Sunday service” or “Studio A”.">
        {(p) => (
          <input
            {...p}
            name="name"
            value={name}
            maxLength={100}
            autoFocus={autoFocus}
            autoComplete="off"
            onChange={(e) => {
              setName(e.target.value);
              clear('name');
            }}
          />
        )}
      </Field>
      <Field label="Description" aside={<span className="optional">optional</span>} error={errors.description}>
        {(p) => (
          <textarea
            {...p}
            name="description"
            rows={2}
            value={description}
            onChange={(e) => {
              setDescription(e.target.value);
              clear('description');
            }}
          />
        )}
      </Field>
      <div className="form-actions">
        <button type="submit" className="button button-primary" disabled={pending}>
          {pending ? 'Creating…' : submitLabel}
        </button>
      </div>
    </form>
  );
}

export function InputBadge({ input }: { input: InputStatus }) {
  const live = input.input_state === 'live';
  return (
    <span className={`badge ${live ? 'badge-ok' : 'badge-neutral'}`} data-input-state={input.input_state}>
      <span className={`badge-dot${live ? ' pulse' : ''}`} aria-hidden="true" />
      {live ? 'Input live' : 'No input'}
    </span>
  );
}

export function ChannelsPage() {
  useDocumentTitle('Channels');
  const toast = useToast();
  const navigate = useNavigate();
  const [channels, setChannels] = useState<Channel[] | null>(null);
  const [streaming, setStreaming] = useState<Record<string, number>>({});
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<Channel | null>(null);

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        const [list, health] = await Promise.all([
          listChannels({}, signal),
          getDestinationsHealth(signal).catch(() => null),
        ]);
        setChannels(list.items);
        const counts: Record<string, number> = {};
        for (const d of health?.destinations ?? []) counts[d.channel_id] = (counts[d.channel_id] ?? 0) + 1;
        setStreaming(counts);
      } catch (err) {
        if (signal?.aborted) return;
        toast.error(err, 'Channels could not be loaded');
        setChannels((c) => c ?? []);
      }
    },
    [toast],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    const t = window.setInterval(() => void load(ctrl.signal), 5000);
    return () => {
      ctrl.abort();
      window.clearInterval(t);
    };
  }, [load]);

  return (
    <>
      <PageHeader
        title="Channels"
        lead="Each channel is one live stream: your encoder publishes to it, Lunora sends it on to your destinations."
        actions={
          <>
            <Link to="/stream/setup" className="button button-secondary">
              <Icon name="wand" /> Quick setup
            </Link>
            <button type="button" className="button button-primary" onClick={() => setCreating(true)}>
              <Icon name="plus" /> New channel
            </button>
          </>
        }
      />

      {channels === null ? (
        <Loading label="Loading channels…" />
      ) : channels.length === 0 ? (
        <EmptyState
          icon="broadcast"
          title="No channels yet"
          action={
            <Link to="/stream/setup" className="button button-primary">
              Start the quick setup
            </Link>
          }
        >
          The quick setup creates a channel, adds your destinations and takes you live in three steps.
        </EmptyState>
      ) : (
        <ul className="channel-list" aria-label="Channels">
          {channels.map((ch) => {
            const input = inputOf(ch);
            const pushes = streaming[ch.id] ?? 0;
            return (
              <li key={ch.id} className="channel-row" data-channel={ch.name}>
                <div className="channel-row-main">
                  <Link to={`/stream/channels/${ch.id}`} className="channel-name">
                    {ch.name}
                  </Link>
                  <span className="muted small">{ch.description || `Created ${formatAgo(ch.created_at)}`}</span>
                </div>
                <div className="channel-row-status">
                  {pushes > 0 && (
                    <span className="badge badge-live">
                      <span className="badge-dot pulse" aria-hidden="true" />
                      On air · {pushes} {pushes === 1 ? 'destination' : 'destinations'}
                    </span>
                  )}
                  <InputBadge input={input} />
                  {input.input_state === 'live' && input.video && (
                    <span className="muted small nowrap">
                      {input.video.width}×{input.video.height} · {formatBitrate(input.bitrate_bps)}
                    </span>
                  )}
                </div>
                <Link to={`/stream/channels/${ch.id}`} className="button button-secondary button-small">
                  Control room <Icon name="arrowRight" size={16} />
                </Link>
              </li>
            );
          })}
        </ul>
      )}

      <Modal open={creating} onClose={() => setCreating(false)} title="New channel">
        {creating && (
          <CreateChannelForm
            autoFocus
            onCreated={(ch) => {
              setCreating(false);
              setCreated(ch);
              setChannels((all) => [ch, ...(all ?? [])]);
              toast.success(`Channel “${ch.name}” created`);
            }}
          />
        )}
      </Modal>

      {created && (
        <StreamKeyModal
          open
          channel={created}
          publishUrl={created.publish_url}
          onClose={() => {
            const id = created.id;
            setCreated(null);
            navigate(`/stream/channels/${id}`);
          }}
        />
      )}
    </>
  );
}
