import { useCallback, useEffect, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { getChannel, listDestinations, startStreaming } from '../../api/endpoints';
import type { Channel, Destination } from '../../api/types';
import { Loading } from '../../auth/RequireAuth';
import { Icon } from '../../components/Icons';
import { useToast } from '../../components/Toasts';
import { PageHeader } from '../../components/ui';
import { formatBitrate } from '../../lib/format';
import { platform } from '../../lib/platforms';
import { useLive } from '../../live/useLive';
import { useDocumentTitle } from '../../useDocumentTitle';
import { CreateChannelForm, inputOf } from './Channels';
import { DestinationForm, PlatformMark, TestConnection } from './DestinationForm';
import { inputSummary } from './live';
import { EncoderInstructions, PublishDetails, splitPublishUrl } from './publish';

type Step = 1 | 2 | 3;

const STEPS: { n: Step; label: string }[] = [
  { n: 1, label: 'Channel' },
  { n: 2, label: 'Destinations' },
  { n: 3, label: 'Go live' },
];

function Stepper({ step }: { step: Step }) {
  return (
    <ol className="stepper" aria-label="Setup progress">
      {STEPS.map((s) => (
        <li
          key={s.n}
          className={s.n === step ? 'current' : s.n < step ? 'done' : ''}
          aria-current={s.n === step ? 'step' : undefined}
        >
          <span className="stepper-n" aria-hidden="true">
            {s.n < step ? <Icon name="check" size={14} /> : s.n}
          </span>
          <span className="stepper-label">
            <span className="visually-hidden">Step {s.n}: </span>
            {s.label}
            {s.n < step && <span className="visually-hidden"> (done)</span>}
          </span>
        </li>
      ))}
    </ol>
  );
}

/** Step 1: name the channel, then show where to publish (the key, once). */
function StepChannel({
  channel,
  publishUrl,
  onCreated,
  onNext,
}: {
  channel: Channel | null;
  publishUrl: string | null;
  onCreated: (ch: Channel) => void;
  onNext: () => void;
}) {
  if (!channel) {
    return (
      <section className="card wizard-card" aria-labelledby="step1-heading">
        <h2 id="step1-heading">Name your channel</h2>
        <p className="muted">A channel is one live stream. You get an address and a key for your encoder.</p>
        <CreateChannelForm onCreated={onCreated} submitLabel="Create channel" autoFocus />
      </section>
    );
  }
  const url = publishUrl ?? channel.publish_url;
  const { server, key } = splitPublishUrl(url);
  return (
    <section className="card wizard-card" aria-labelledby="step1-heading">
      <div className="success-head">
        <span className="success-icon" aria-hidden="true">
          <Icon name="check" size={20} />
        </span>
        <div>
          <h2 id="step1-heading">“{channel.name}” is ready for your encoder</h2>
          <p className="muted">Point your encoder at this address. You can start it now or after adding destinations.</p>
        </div>
      </div>
      <PublishDetails publishUrl={url} />
      <h3 className="subhead">Encoder settings</h3>
      <EncoderInstructions server={server} streamKey={key} />
      <div className="wizard-nav">
        <span />
        <button type="button" className="button button-primary" onClick={onNext}>
          Next: destinations <Icon name="arrowRight" size={16} />
        </button>
      </div>
    </section>
  );
}

/** Step 2: pick destinations, add new ones with platform presets, test them. */
function StepDestinations({
  destinations,
  selected,
  setSelected,
  onAdded,
  onBack,
  onNext,
}: {
  destinations: Destination[];
  selected: Set<string>;
  setSelected: (s: Set<string>) => void;
  onAdded: (d: Destination) => void;
  onBack: () => void;
  onNext: () => void;
}) {
  const [adding, setAdding] = useState(destinations.length === 0);
  const toast = useToast();
  const enabled = destinations.filter((d) => d.enabled);
  return (
    <section className="card wizard-card" aria-labelledby="step2-heading">
      <h2 id="step2-heading">Where should it go?</h2>
      <p className="muted">Choose the platforms to send this channel to. Test a connection before going live.</p>

      {enabled.length > 0 && (
        <ul className="pick-list wizard-destinations" aria-label="Your destinations">
          {enabled.map((d) => (
            <li key={d.id} data-destination={d.name}>
              <label className="check pick">
                <input
                  type="checkbox"
                  checked={selected.has(d.id)}
                  onChange={(e) => {
                    const n = new Set(selected);
                    if (e.target.checked) n.add(d.id);
                    else n.delete(d.id);
                    setSelected(n);
                  }}
                />
                <PlatformMark id={d.platform} size="small" />
                <span className="grow">
                  {d.name}
                  <span className="muted small block">
                    {platform(d.platform).name} · key {d.stream_key_masked}
                  </span>
                </span>
              </label>
              <TestConnection destination={d} />
            </li>
          ))}
        </ul>
      )}

      {adding ? (
        <div className="add-destination">
          <h3 className="subhead">Add a destination</h3>
          <DestinationForm
            onSaved={(d) => {
              toast.success(`${d.name} added`);
              onAdded(d);
              setAdding(false);
            }}
            {...(enabled.length > 0 ? { onCancel: () => setAdding(false) } : {})}
          />
        </div>
      ) : (
        <button type="button" className="button button-secondary" onClick={() => setAdding(true)}>
          <Icon name="plus" /> Add a destination
        </button>
      )}

      <div className="wizard-nav">
        <button type="button" className="button button-ghost" onClick={onBack}>
          <Icon name="arrowLeft" size={16} /> Back
        </button>
        <button type="button" className="button button-primary" onClick={onNext} disabled={selected.size === 0}>
          Next: go live <Icon name="arrowRight" size={16} />
        </button>
      </div>
    </section>
  );
}

/** Step 3: check the input and start streaming to the chosen destinations. */
function StepGoLive({
  channel,
  chosen,
  onBack,
}: {
  channel: Channel;
  chosen: Destination[];
  onBack: () => void;
}) {
  const live = useLive(channel.id);
  const navigate = useNavigate();
  const toast = useToast();
  const [pending, setPending] = useState(false);
  const input = inputOf({ status: live.status?.input ?? channel.status });
  const receiving = input.input_state === 'live';

  useEffect(() => {
    // Already streaming (another tab, or a second run): the control room is the place.
    if (live.status?.streaming) navigate(`/stream/channels/${channel.id}`, { replace: true });
  }, [live.status?.streaming, channel.id, navigate]);

  return (
    <section className="card wizard-card" aria-labelledby="step3-heading">
      <h2 id="step3-heading">Ready to go live</h2>
      <div className={`readiness ${receiving ? 'is-ok' : 'is-waiting'}`} data-testid="wizard-input" role="status">
        <span className={`badge ${receiving ? 'badge-ok' : 'badge-neutral'}`} data-input-state={input.input_state}>
          <span className={`badge-dot${receiving ? ' pulse' : ''}`} aria-hidden="true" />
          {receiving ? 'Input live' : 'No input yet'}
        </span>
        <span>
          {receiving
            ? `${inputSummary(input)} · ${formatBitrate(input.bitrate_bps)}`
            : 'Start your encoder. You can go live now: destinations connect as soon as the input arrives.'}
        </span>
      </div>
      <h3 className="subhead">Destinations</h3>
      <ul className="summary-list">
        {chosen.map((d) => (
          <li key={d.id}>
            <PlatformMark id={d.platform} size="small" />
            <span className="grow">{d.name}</span>
            <span className="muted small mono">{d.rtmp_url}</span>
          </li>
        ))}
      </ul>
      <div className="wizard-nav">
        <button type="button" className="button button-ghost" onClick={onBack}>
          <Icon name="arrowLeft" size={16} /> Back
        </button>
        <button
          type="button"
          className="button button-live"
          disabled={pending || chosen.length === 0}
          onClick={async () => {
            setPending(true);
            try {
              await startStreaming(
                channel.id,
                chosen.map((d) => d.id),
              );
              toast.success('You are live', `Streaming “${channel.name}” to ${chosen.length} ${chosen.length === 1 ? 'destination' : 'destinations'}.`);
              navigate(`/stream/channels/${channel.id}`);
            } catch (err) {
              toast.error(err, 'Streaming did not start');
              setPending(false);
            }
          }}
        >
          <Icon name="play" /> {pending ? 'Starting…' : 'Start streaming'}
        </button>
      </div>
    </section>
  );
}

export function SetupPage() {
  useDocumentTitle('Quick setup');
  const [params, setParams] = useSearchParams();
  const toast = useToast();
  const channelParam = params.get('channel');
  const [channel, setChannel] = useState<Channel | null>(null);
  // The full publish URL lives only in memory: it is in the create answer and nowhere else.
  const [publishUrl, setPublishUrl] = useState<string | null>(null);
  const [destinations, setDestinations] = useState<Destination[] | null>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const stepParam = Number(params.get('step') ?? '1');
  const step: Step = !channel ? 1 : stepParam === 3 && selected.size ? 3 : stepParam >= 2 ? 2 : 1;

  const go = useCallback(
    (n: Step, ch: Channel | null = channel) => {
      const next = new URLSearchParams();
      if (ch) next.set('channel', ch.id);
      if (n > 1) next.set('step', String(n));
      setParams(next);
    },
    [channel, setParams],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    listDestinations(ctrl.signal)
      .then((l) => setDestinations(l.items))
      .catch((err) => {
        if (!ctrl.signal.aborted) {
          toast.error(err, 'Destinations could not be loaded');
          setDestinations([]);
        }
      });
    return () => ctrl.abort();
  }, [toast]);

  // Coming back with ?channel=… (a reload, or "Add destinations" from a channel).
  useEffect(() => {
    if (!channelParam || channel?.id === channelParam) return;
    const ctrl = new AbortController();
    getChannel(channelParam, ctrl.signal)
      .then((ch) => {
        setChannel(ch);
        if (!params.get('step')) go(2, ch);
      })
      .catch((err) => {
        if (!ctrl.signal.aborted) toast.error(err, 'That channel could not be loaded');
      });
    return () => ctrl.abort();
  }, [channelParam]);

  if (destinations === null || (channelParam && !channel)) return <Loading label="Loading…" />;

  const chosen = destinations.filter((d) => selected.has(d.id));

  return (
    <div className="wizard">
      <PageHeader
        eyebrow={
          <Link to="/stream" className="back-link">
            <Icon name="arrowLeft" size={14} /> Channels
          </Link>
        }
        title="Quick setup"
        lead="Three steps from nothing to live: a channel for your encoder, the platforms to send it to, and the go-live button."
      />
      <Stepper step={step} />
      {step === 1 && (
        <StepChannel
          channel={channel}
          publishUrl={publishUrl}
          onCreated={(ch) => {
            setChannel(ch);
            setPublishUrl(ch.publish_url);
            go(1, ch);
          }}
          onNext={() => go(2)}
        />
      )}
      {step === 2 && (
        <StepDestinations
          destinations={destinations}
          selected={selected}
          setSelected={setSelected}
          onAdded={(d) => {
            setDestinations((all) => [...(all ?? []), d]);
            setSelected((s) => new Set(s).add(d.id));
          }}
          onBack={() => go(1)}
          onNext={() => go(3)}
        />
      )}
      {step === 3 && channel && <StepGoLive channel={channel} chosen={chosen} onBack={() => go(2)} />}
    </div>
  );
}
