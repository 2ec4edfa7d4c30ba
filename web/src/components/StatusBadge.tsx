import type { HealthStatus } from '../api/types';

type Tone = 'ok' | 'warn' | 'bad' | 'neutral';

function toneOf(status: HealthStatus): Tone {
  switch (status.toLowerCase()) {
    case 'healthy':
    case 'ok':
    case 'up':
      return 'ok';
    case 'degraded':
    case 'warning':
      return 'warn';
    case 'unhealthy':
    case 'down':
    case 'error':
    case 'failed':
      return 'bad';
    default:
      return 'neutral';
  }
}

export function statusLabel(status: HealthStatus): string {
  const words = status.replace(/_/g, ' ').trim();
  return words ? words[0]!.toUpperCase() + words.slice(1) : 'Unknown';
}

/** A status pill: colour for a quick look, always with the word so colour is never the only cue. */
export function StatusBadge({ status }: { status: HealthStatus }) {
  return (
    <span className={`badge badge-${toneOf(status)}`} data-status={status}>
      <span className="badge-dot" aria-hidden="true" />
      {statusLabel(status)}
    </span>
  );
}
