// The apps in the one UI bundle, each under its own path (optionally mapped to a host name by the
// server's config). Home, the header and the placeholder pages read this list.

export type AppId = 'stream' | 'admin' | 'watch' | 'ads';

export interface AppInfo {
  id: AppId;
  path: `/${AppId}`;
  /** Short name for navigation. */
  nav: string;
  /** Full name, used as the page heading. */
  name: string;
  summary: string;
}

export const APPS: readonly AppInfo[] = [
  {
    id: 'stream',
    path: '/stream',
    nav: 'Operator',
    name: 'Operator console',
    summary: 'Run live channels: redundant inputs and failover, destinations and presets, live status.',
  },
  {
    id: 'admin',
    path: '/admin',
    nav: 'Admin',
    name: 'Administration',
    summary: 'Users and roles, cameras and recordings, API tokens, audit log, backups and monitoring.',
  },
  {
    id: 'watch',
    path: '/watch',
    nav: 'Watch',
    name: 'Viewer portal',
    summary: 'Watch live streams in the browser: search, recommendations, subscriptions and your library.',
  },
  {
    id: 'ads',
    path: '/ads',
    nav: 'Ads',
    name: 'Podcast advertising',
    summary: 'Campaigns, shows and episodes, clients and account teams, with real-time updates.',
  },
];
