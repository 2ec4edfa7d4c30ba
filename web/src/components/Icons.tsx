import type { AppId } from '../apps';

interface IconProps {
  size?: number;
}

/** The Lunora mark: a crescent moon on a violet tile. Decorative; pair it with visible text. */
export function LogoMark({ size = 28 }: IconProps) {
  return (
    <svg width={size} height={size} viewBox="0 0 32 32" aria-hidden="true" focusable="false">
      <defs>
        <linearGradient id="lunora-logo-gradient" x1="0" y1="0" x2="1" y2="1">
          <stop offset="0" stopColor="#8b7bff" />
          <stop offset="1" stopColor="#4f46e5" />
        </linearGradient>
      </defs>
      <rect width="32" height="32" rx="8" fill="url(#lunora-logo-gradient)" />
      <path d="M20.5 7.5a9 9 0 1 0 4 15.6A10 10 0 0 1 20.5 7.5z" fill="#fff" />
      <circle cx="22.5" cy="12" r="2" fill="#fff" opacity=".85" />
    </svg>
  );
}

const paths: Record<AppId, string> = {
  // broadcast tower
  stream:
    'M12 13a1 1 0 1 0 0-2 1 1 0 0 0 0 2zM8.5 8.5a5 5 0 0 0 0 7M15.5 8.5a5 5 0 0 1 0 7M5.6 5.6a9 9 0 0 0 0 12.8M18.4 5.6a9 9 0 0 1 0 12.8M12 13v8',
  // shield
  admin: 'M12 3l7 3v5c0 4.5-3 8.3-7 10-4-1.7-7-5.5-7-10V6l7-3zM9 12l2 2 4-4',
  // play in a screen
  watch: 'M3 5h18v12H3zM8 21h8M10.5 8.5v5l4-2.5-4-2.5z',
  // microphone
  ads: 'M12 3a3 3 0 0 0-3 3v5a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3zM6 11a6 6 0 0 0 12 0M12 17v4M9 21h6',
};

export function AppIcon({ app, size = 24 }: IconProps & { app: AppId }) {
  return (
    <svg
      width={size}
      height={size}
      viewBox="0 0 24 24"
      fill="none"
      stroke="currentColor"
      strokeWidth="1.75"
      strokeLinecap="round"
      strokeLinejoin="round"
      aria-hidden="true"
      focusable="false"
    >
      <path d={paths[app]} />
    </svg>
  );
}
