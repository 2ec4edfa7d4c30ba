// Words and badges for what the live engine reports.

import type { DestinationStatus, InputStatus } from '../../api/types';
import { capitalise } from '../../components/Toasts';

/** A push's state, plus two the screen knows: not in the session, and stopped from this screen. */
export type CardState = DestinationStatus['state'] | 'off' | 'stopped';

const STATE: Record<string, { label: string; tone: 'ok' | 'warn' | 'bad' | 'neutral' | 'info' }> = {
  live: { label: 'Live', tone: 'ok' },
  connecting: { label: 'Connecting', tone: 'info' },
  idle: { label: 'Waiting for input', tone: 'neutral' },
  retrying: { label: 'Reconnecting', tone: 'warn' },
  failed: { label: 'Failed', tone: 'bad' },
  off: { label: 'Not streaming', tone: 'neutral' },
  stopped: { label: 'Stopped', tone: 'neutral' },
};

export function stateLabel(state: string): string {
  return STATE[state]?.label ?? capitalise(state);
}

export function StateBadge({ state }: { state: string }) {
  const s = STATE[state] ?? { label: capitalise(state), tone: 'neutral' as const };
  const moving = state === 'live' || state === 'connecting' || state === 'retrying';
  return (
    <span className={`badge badge-${s.tone}`} data-state={state}>
      <span className={`badge-dot${moving ? ' pulse' : ''}`} aria-hidden="true" />
      {s.label}
    </span>
  );
}

/** A short headline for an engine error, with the server's own words kept as the detail. */
export function explainError(raw: string | null | undefined): { headline: string; detail: string } | null {
  if (!raw) return null;
  const r = raw.toLowerCase();
  const detail = capitalise(raw);
  const pick = (headline: string) => ({ headline, detail });
  if (/refused/.test(r) && /key|publish|stream name|badname|unauthori|forbidden|denied/.test(r)) {
    return pick('The platform refused the stream key');
  }
  if (/refused/.test(r)) return pick('The destination server refused the connection');
  if (/timed? ?out|timeout|did not answer/.test(r)) return pick('The destination did not answer in time');
  if (/resolve|dns|lookup|name or service/.test(r)) return pick('The server name could not be found');
  if (/tls|certificate|handshake/.test(r)) return pick('The secure (RTMPS) connection failed');
  if (/closed|lost|reset|broken pipe|eof/.test(r)) return pick('The connection to the destination was lost');
  if (/url|scheme|port|host/.test(r)) return pick('The destination URL is not valid');
  return { headline: detail, detail: '' };
}

export function inputSummary(input: InputStatus): string {
  if (input.input_state !== 'live') return 'No signal';
  const parts: string[] = [];
  if (input.video) parts.push(`${input.video.width}×${input.video.height}`);
  if (input.fps) parts.push(`${Math.round(input.fps)} fps`);
  return parts.join(' · ') || 'Receiving';
}
