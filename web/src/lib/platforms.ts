// The destination platforms the server knows, with what an operator needs to fill in.

export type PlatformId = 'youtube' | 'x' | 'linkedin' | 'custom';

export interface Platform {
  id: PlatformId;
  name: string;
  /** Short mark for the tile (no logos shipped). */
  mark: string;
  /** The server fills this in when the URL is left empty. */
  defaultUrl?: string;
  urlRequired: boolean;
  urlPlaceholder: string;
  keyLabel: string;
  steps: string[];
}

export const PLATFORMS: readonly Platform[] = [
  {
    id: 'youtube',
    name: 'YouTube Live',
    mark: 'YT',
    defaultUrl: 'rtmp://a.rtmp.youtube.com/live2',
    urlRequired: false,
    urlPlaceholder: 'rtmp://a.rtmp.youtube.com/live2',
    keyLabel: 'Stream key',
    steps: [
      'Open YouTube Studio and choose Create → Go live.',
      'Under Stream, pick or create a stream key.',
      'Copy the stream key and paste it below. Leave the server URL empty for YouTube’s default ingest.',
    ],
  },
  {
    id: 'x',
    name: 'X Live',
    mark: 'X',
    defaultUrl: 'rtmps://va.pscp.tv:443/x',
    urlRequired: false,
    urlPlaceholder: 'rtmps://va.pscp.tv:443/x',
    keyLabel: 'Stream key',
    steps: [
      'Open X Media Studio → Producer → Sources and create an RTMP source.',
      'Copy the RTMP URL (or keep the default below) and the stream key.',
      'Paste the stream key below, then create a broadcast on X that uses this source.',
    ],
  },
  {
    id: 'linkedin',
    name: 'LinkedIn Live',
    mark: 'in',
    urlRequired: true,
    urlPlaceholder: 'rtmps://…linkedin.com:443/live',
    keyLabel: 'Stream key',
    steps: [
      'On LinkedIn choose Create an event (or Go live) and select “Custom stream”.',
      'Copy the Stream URL and the Stream key that LinkedIn shows.',
      'Paste both below. LinkedIn URLs are per event, so update them for each broadcast.',
    ],
  },
  {
    id: 'custom',
    name: 'Custom RTMP',
    mark: 'RTMP',
    urlRequired: true,
    urlPlaceholder: 'rtmp://live.example.com/app',
    keyLabel: 'Stream key',
    steps: [
      'Get the RTMP or RTMPS server URL and the stream key (stream name) from the receiving server.',
      'Paste them below: the URL without the key, e.g. rtmp://host:1935/live.',
    ],
  },
];

export function platform(id: string): Platform {
  return PLATFORMS.find((p) => p.id === id) ?? PLATFORMS[PLATFORMS.length - 1]!;
}

/** A coloured tile with the platform's mark. */
export function platformClass(id: string): string {
  return `platform-mark platform-${PLATFORMS.some((p) => p.id === id) ? id : 'custom'}`;
}
