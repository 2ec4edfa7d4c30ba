import { useState } from 'react';
import type { Channel } from '../../api/types';
import { CopyField, Modal, Tabs } from '../../components/ui';

/** `rtmp://host:port/live/KEY` → server part and key. */
export function splitPublishUrl(url: string): { server: string; key: string } {
  const i = url.lastIndexOf('/');
  if (i < 0) return { server: url, key: '' };
  return { server: url.slice(0, i), key: url.slice(i + 1) };
}

/** Whether a key is the masked form (`****abcd`) rather than the key itself. */
export function isMasked(key: string): boolean {
  return key.startsWith('*');
}

type Encoder = 'obs' | 'ffmpeg' | 'hardware';

const ENCODERS = [
  { id: 'obs', label: 'OBS Studio' },
  { id: 'ffmpeg', label: 'FFmpeg' },
  { id: 'hardware', label: 'Hardware encoder' },
] as const;

/** How to point an encoder at this channel, with the server URL and key filled in. */
export function EncoderInstructions({ server, streamKey }: { server: string; streamKey: string }) {
  const [tab, setTab] = useState<Encoder>('obs');
  const known = !isMasked(streamKey);
  const keyText = known ? streamKey : '<your stream key>';
  return (
    <div className="instructions">
      <Tabs label="Encoder" tabs={ENCODERS} value={tab} onChange={setTab} />
      <div className="tab-panel" role="tabpanel" aria-label={ENCODERS.find((e) => e.id === tab)?.label}>
        {tab === 'obs' && (
          <ol className="steps">
            <li>
              In OBS open <strong>Settings → Stream</strong>.
            </li>
            <li>
              Set <strong>Service</strong> to <em>Custom…</em>, <strong>Server</strong> to the server URL and{' '}
              <strong>Stream Key</strong> to the stream key above.
            </li>
            <li>
              Under <strong>Output</strong>, use a keyframe interval of 2 s and CBR (e.g. 4500–6000 kb/s for 1080p).
            </li>
            <li>
              Click <strong>Start Streaming</strong>. The input indicator turns live within a few seconds.
            </li>
          </ol>
        )}
        {tab === 'ffmpeg' && (
          <>
            <p className="muted small">Send a file (or any FFmpeg input) in real time:</p>
            <pre className="code-block">
              <code>{`ffmpeg -re -i input.mp4 \\
  -c:v libx264 -preset veryfast -b:v 4500k -g 60 \\
  -c:a aac -b:a 160k -ar 48000 \\
  -f flv "${server}/${keyText}"`}</code>
            </pre>
          </>
        )}
        {tab === 'hardware' && (
          <ol className="steps">
            <li>
              Add an <strong>RTMP</strong> output (Videon, Teradek, Blackmagic Web Presenter, …).
            </li>
            <li>
              URL: the server URL above. Stream name / key: the stream key.
            </li>
            <li>H.264 video with a 1–2 s keyframe interval, AAC audio at 48 kHz.</li>
            <li>For a backup encoder, use the same settings on the second device.</li>
          </ol>
        )}
      </div>
    </div>
  );
}

/**
 * The publish details of a channel: the server URL and the key. The key is known in full only
 * right after the channel was created; afterwards the server only shows its last 4 characters.
 */
export function PublishDetails({ publishUrl }: { publishUrl: string }) {
  const { server, key } = splitPublishUrl(publishUrl);
  const known = !isMasked(key);
  return (
    <div className="publish-details">
      <CopyField label="Server URL" value={server} testId="publish-server" />
      {known ? (
        <CopyField
          label="Stream key"
          value={key}
          secret
          testId="publish-key"
          hint={
            <>
              <strong>Shown only now.</strong> Copy it into your encoder or a password manager; Lunora keeps it
              encrypted and will show only its last 4 characters from now on.
            </>
          }
        />
      ) : (
        <div className="copy-field">
          <span className="label-like">Stream key</span>
          <p className="masked-key mono" data-testid="publish-key-masked">
            {key}
          </p>
          <p className="hint">The full key was shown once, when the channel was created.</p>
        </div>
      )}
    </div>
  );
}

/** "Stream key" modal for a channel: where to publish and how, per encoder. */
export function StreamKeyModal({
  channel,
  publishUrl,
  open,
  onClose,
}: {
  channel: Pick<Channel, 'name'>;
  publishUrl: string;
  open: boolean;
  onClose: () => void;
}) {
  const { server, key } = splitPublishUrl(publishUrl);
  return (
    <Modal
      open={open}
      onClose={onClose}
      title={`Publish to “${channel.name}”`}
      wide
      footer={
        <button type="button" className="button button-primary" onClick={onClose}>
          Done
        </button>
      }
    >
      <PublishDetails publishUrl={publishUrl} />
      <h3 className="subhead">Set up your encoder</h3>
      <EncoderInstructions server={server} streamKey={key} />
    </Modal>
  );
}
