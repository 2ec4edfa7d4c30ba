// Typed calls of the advertising workspace (crates/api/src/ads.rs, ads_reports.rs). Shapes come
// from schema.d.ts (npm run gen:api).

import { ApiError, request } from '../../api/client';
import type { components } from '../../api/schema';

type S = components['schemas'];

export type AdClient = S['ClientView'];
export type Show = S['ShowView'];
export type Episode = S['EpisodeView'];
export type Campaign = S['CampaignView'];
export type CampaignBody = S['CampaignBody'];
export type Availability = S['AvailabilityView'];
export type Activity = S['ActivityView'];
export type Notification = S['NotificationView'];
export type Placement = S['PlacementView'];
export type CampaignReport = S['CampaignReport'];
export type ClientBilling = S['ClientBilling'];
export type Person = S['Person'];
export type InventoryEpisode = S['InventoryEpisode'];

interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

type Query = Record<string, string | number | boolean | undefined | null>;

/** Every page of a list (lists here are small: at most a few pages of 200). */
async function all<T>(path: string, query: Query = {}): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null | undefined;
  for (let i = 0; i < 25; i++) {
    const page = await request<Page<T>>(path, { query: { ...query, limit: 200, cursor } });
    out.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return out;
}

export const listClients = (q: Query = {}) => all<AdClient>('/api/v1/clients', q);
export const getClient = (id: string) => request<AdClient>(`/api/v1/clients/${encodeURIComponent(id)}`);
export const createClient = (body: S['ClientBody']) => request<AdClient>('/api/v1/clients', { method: 'POST', body });
export const updateClient = (id: string, version: number, body: S['ClientBody']) =>
  request<AdClient>(`/api/v1/clients/${encodeURIComponent(id)}`, { method: 'PUT', body, headers: ifMatch(version) });
export const getBilling = (id: string) => request<ClientBilling>(`/api/v1/clients/${encodeURIComponent(id)}/billing`);

export const listShows = () => all<Show>('/api/v1/shows');
export const createShow = (body: S['ShowBody']) => request<Show>('/api/v1/shows', { method: 'POST', body });
export const listEpisodes = (q: Query = {}) => all<Episode>('/api/v1/episodes', { sort: 'air_date', ...q });
export const createEpisode = (body: S['EpisodeBody']) => request<Episode>('/api/v1/episodes', { method: 'POST', body });
export const updateEpisode = (id: string, version: number, body: S['EpisodeBody']) =>
  request<Episode>(`/api/v1/episodes/${encodeURIComponent(id)}`, { method: 'PUT', body, headers: ifMatch(version) });

export const listCampaigns = (q: Query = {}) => all<Campaign>('/api/v1/campaigns', q);
export const getCampaign = (id: string) => request<Campaign>(`/api/v1/campaigns/${encodeURIComponent(id)}`);
export const createCampaign = (body: CampaignBody) => request<Campaign>('/api/v1/campaigns', { method: 'POST', body });
export const updateCampaign = (id: string, version: number, body: CampaignBody) =>
  request<Campaign>(`/api/v1/campaigns/${encodeURIComponent(id)}`, { method: 'PUT', body, headers: ifMatch(version) });
export const addTeamMember = (id: string, body: S['TeamBody']) =>
  request<Campaign>(`/api/v1/campaigns/${encodeURIComponent(id)}/team`, { method: 'POST', body });
export const removeTeamMember = (id: string, userId: string) =>
  request<void>(`/api/v1/campaigns/${encodeURIComponent(id)}/team/${encodeURIComponent(userId)}`, { method: 'DELETE' });
export const listPlacements = async (id: string) =>
  (await request<S['PlacementList']>(`/api/v1/campaigns/${encodeURIComponent(id)}/placements`)).items;
export const createPlacement = (id: string, body: S['PlacementBody']) =>
  request<Placement>(`/api/v1/campaigns/${encodeURIComponent(id)}/placements`, { method: 'POST', body });
export const deletePlacement = (id: string, placementId: string) =>
  request<void>(`/api/v1/campaigns/${encodeURIComponent(id)}/placements/${encodeURIComponent(placementId)}`, {
    method: 'DELETE',
  });
export const getReport = (id: string) => request<CampaignReport>(`/api/v1/campaigns/${encodeURIComponent(id)}/report`);

export const listInventory = async () => (await request<S['Inventory']>('/api/v1/ads/inventory')).items;
export const listPeople = async () => (await request<S['PeopleList']>('/api/v1/ads/people')).items;

export const listAvailability = async (userId?: string) =>
  (await request<S['AvailabilityList']>('/api/v1/availability', { query: { talent_id: userId } })).items;
export const createAvailability = (body: S['AvailabilityBody']) =>
  request<Availability>('/api/v1/availability', { method: 'POST', body });
export const deleteAvailability = (id: string) =>
  request<void>(`/api/v1/availability/${encodeURIComponent(id)}`, { method: 'DELETE' });

export const listActivities = async (q: Query) =>
  (await request<S['ActivityList']>('/api/v1/activities', { query: { limit: 50, ...q } })).items;

export const listNotifications = (unread = false) =>
  request<S['NotificationList']>('/api/v1/notifications', { query: { limit: 30, unread: unread || undefined } });
export const markNotificationRead = (id: string) =>
  request<unknown>(`/api/v1/notifications/${encodeURIComponent(id)}/read`, { method: 'POST' });
export const markNotificationsRead = (body: S['BatchRead']) =>
  request<S['BatchReadResult']>('/api/v1/notifications/batch-read', { method: 'POST', body });

function ifMatch(version: number): Record<string, string> {
  return { 'If-Match': `"${version}"` };
}

/** The current row a 412 carries in `current` (someone else saved first), if this is one. */
export function conflictCurrent<T>(err: unknown): T | null {
  if (!(err instanceof ApiError) || err.status !== 412) return null;
  const current = (err.problem as Record<string, unknown>)['current'];
  return current && typeof current === 'object' ? (current as T) : null;
}

// ---- backups (crates/api/src/backups.rs) -----------------------------------------------------

export type Backup = S['BackupView'];
export type BackupSchedule = S['ScheduleView'];
export type RestoreReport = S['RestoreReport'];
export type EntityReport = S['EntityReport'];

export const listBackups = async () => (await request<S['BackupList']>('/api/v1/backups')).items;
export const createBackup = () => request<Backup>('/api/v1/backups', { method: 'POST', body: {} });
export const deleteBackup = (id: string) =>
  request<void>(`/api/v1/backups/${encodeURIComponent(id)}`, { method: 'DELETE' });
export const uploadBackup = (file: Blob) =>
  request<Backup>('/api/v1/backups/upload', { method: 'POST', raw: { data: file, type: 'application/octet-stream' } });
export const backupDownloadUrl = (id: string) => `/api/v1/backups/${encodeURIComponent(id)}/download`;
export const restoreBackup = (body: { backup_id: string; entity_types: string[]; dry_run: boolean }) =>
  request<RestoreReport>('/api/v1/backups/restore', { method: 'POST', body });
export const getBackupSchedule = () => request<BackupSchedule>('/api/v1/backups/schedule');
export const putBackupSchedule = (body: BackupSchedule) =>
  request<BackupSchedule>('/api/v1/backups/schedule', { method: 'PUT', body });
