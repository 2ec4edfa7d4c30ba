// Numbers and times as people read them.

/** 6_200_000 → "6.2 Mb/s"; 0 → "0 b/s". */
export function formatBitrate(bps: number | null | undefined): string {
  const v = Number(bps ?? 0);
  if (!Number.isFinite(v) || v <= 0) return '0 b/s';
  if (v >= 1e9) return `${(v / 1e9).toFixed(2)} Gb/s`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(v >= 1e8 ? 0 : 1)} Mb/s`;
  if (v >= 1e3) return `${Math.round(v / 1e3)} kb/s`;
  return `${Math.round(v)} b/s`;
}

/** 1_536_000 → "1.5 MB". */
export function formatBytes(bytes: number | null | undefined): string {
  const v = Number(bytes ?? 0);
  if (!Number.isFinite(v) || v <= 0) return '0 B';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let n = v;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return `${n.toFixed(n >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Seconds as a clock: 83 → "1:23", 5025 → "1:23:45". */
export function formatClock(seconds: number | null | undefined): string {
  const s = Math.max(0, Math.floor(Number(seconds ?? 0)));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, '0');
  const ss = String(sec).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** Seconds in words: 5025 → "1h 23m", 75 → "1m 15s", 9 → "9s". */
export function formatDuration(seconds: number | null | undefined): string {
  const s = Math.max(0, Math.round(Number(seconds ?? 0)));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m) return `${m}m ${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

/** RFC 3339 → local "23 Nov 2025, 16:04"; empty for nothing. */
export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : timeOnly.format(d);
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** "5 minutes ago", "yesterday"; `never` for nothing. */
export function formatAgo(iso: string | null | undefined, never = 'Never'): string {
  if (!iso) return never;
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return iso;
  const diff = (t - Date.now()) / 1000;
  const abs = Math.abs(diff);
  if (abs < 45) return 'just now';
  if (abs < 3600) return relative.format(Math.round(diff / 60), 'minute');
  if (abs < 86400) return relative.format(Math.round(diff / 3600), 'hour');
  if (abs < 86400 * 30) return relative.format(Math.round(diff / 86400), 'day');
  return formatDateTime(iso);
}

/** snake_case words → "Snake case". */
export function humanize(s: string | null | undefined): string {
  const w = (s ?? '').replace(/[_.]+/g, ' ').trim();
  return w ? w.charAt(0).toUpperCase() + w.slice(1) : '';
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
