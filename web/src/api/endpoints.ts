// Typed calls to /api/v1, one per operation the UI uses. Shapes come from schema.d.ts, generated
// from the server's OpenAPI document (npm run gen:api).

import { request } from './client';
import type {
  Alert,
  AlertList,
  ApiToken,
  ApiTokenCreated,
  ApiTokenList,
  AuditEntry,
  AuditList,
  Camera,
  CameraImportReport,
  CameraList,
  CameraStatus,
  Dashboard,
  PlayToken,
  Preset,
  PresetExport,
  PresetImportReport,
  PresetInput,
  PresetList,
  Recording,
  RecordingList,
  RecordingSettings,
  SourcesConfig,
  SourcesConfigBody,
  SourcesStatus,
  StorageUsage,
  SystemFigures,
  Channel,
  ChannelList,
  CreateApiTokenBody,
  CreateChannelBody,
  CreateDestinationBody,
  CreateInvitationBody,
  Destination,
  DestinationList,
  DestinationTestResult,
  DestinationsReport,
  EngineReport,
  Invitation,
  InvitationList,
  MfaEnrolment,
  MfaStatus,
  RecoveryCodes,
  SessionList,
  SessionView,
  StreamingStatus,
  UpdateDestinationBody,
  UpdateUserBody,
  User,
  UserList,
} from './types';

const v1 = (path: string) => `/api/v1${path}`;
const seg = encodeURIComponent;

type Page = { limit?: number; cursor?: string | undefined };

// ---- channels ----

export const listChannels = (page: Page = {}, signal?: AbortSignal) =>
  request<ChannelList>(v1('/channels'), { query: { limit: page.limit ?? 200, cursor: page.cursor }, signal });

export const getChannel = (id: string, signal?: AbortSignal) => request<Channel>(v1(`/channels/${seg(id)}`), { signal });

export const createChannel = (body: CreateChannelBody) =>
  request<Channel>(v1('/channels'), { method: 'POST', body });

export const deleteChannel = (id: string) => request<void>(v1(`/channels/${seg(id)}`), { method: 'DELETE' });

// ---- destinations ----

export const listDestinations = (signal?: AbortSignal) =>
  request<DestinationList>(v1('/destinations'), { query: { limit: 200 }, signal });

export const createDestination = (body: CreateDestinationBody) =>
  request<Destination>(v1('/destinations'), { method: 'POST', body });

export const updateDestination = (id: string, body: UpdateDestinationBody) =>
  request<Destination>(v1(`/destinations/${seg(id)}`), { method: 'PATCH', body });

export const deleteDestination = (id: string) =>
  request<void>(v1(`/destinations/${seg(id)}`), { method: 'DELETE' });

export const testDestination = (id: string) =>
  request<DestinationTestResult>(v1(`/destinations/${seg(id)}/test`), { method: 'POST' });

// ---- stream control ----

export const startStreaming = (channelId: string, destinationIds?: string[]) =>
  request<StreamingStatus>(v1(`/channels/${seg(channelId)}/streaming/start`), {
    method: 'POST',
    body: destinationIds ? { destination_ids: destinationIds } : {},
  });

export const stopStreaming = (channelId: string) =>
  request<unknown>(v1(`/channels/${seg(channelId)}/streaming/stop`), { method: 'POST' });

export const getStreamingStatus = (channelId: string, signal?: AbortSignal) =>
  request<StreamingStatus>(v1(`/channels/${seg(channelId)}/streaming/status`), { signal });

export const startDestination = (channelId: string, destinationId: string) =>
  request<unknown>(v1(`/channels/${seg(channelId)}/streaming/destinations/${seg(destinationId)}/start`), {
    method: 'POST',
  });

export const stopDestination = (channelId: string, destinationId: string) =>
  request<unknown>(v1(`/channels/${seg(channelId)}/streaming/destinations/${seg(destinationId)}/stop`), {
    method: 'POST',
  });

export const listSessions = (q: Page & { channel_id?: string | undefined } = {}, signal?: AbortSignal) =>
  request<SessionList>(v1('/streaming/sessions'), {
    query: { limit: q.limit ?? 50, cursor: q.cursor, channel_id: q.channel_id },
    signal,
  });

export const getSession = (id: string, signal?: AbortSignal) =>
  request<SessionView>(v1(`/streaming/sessions/${seg(id)}`), { signal });

// ---- health ----

export const getEngineHealth = (signal?: AbortSignal) =>
  request<EngineReport>(v1('/health/engine'), { signal, acceptStatuses: [503] });

export const getDestinationsHealth = (signal?: AbortSignal) =>
  request<DestinationsReport>(v1('/health/destinations'), { signal, acceptStatuses: [503] });

// ---- alerts ----

export const listAlerts = (state: 'active' | 'history' | 'all' = 'active', signal?: AbortSignal, page: Page = {}) =>
  request<AlertList>(v1('/alerts'), { query: { state, limit: page.limit ?? 20, cursor: page.cursor }, signal });

export const resolveAlert = (id: string) => request<Alert>(v1(`/alerts/${seg(id)}/resolve`), { method: 'POST' });

export const acknowledgeAlert = (id: string) =>
  request<Alert>(v1(`/alerts/${seg(id)}/acknowledge`), { method: 'POST' });

// ---- users and invitations ----

export const listUsers = (q: Page & { q?: string; role?: string; status?: string } = {}, signal?: AbortSignal) =>
  request<UserList>(v1('/users'), { query: { limit: q.limit ?? 100, cursor: q.cursor, q: q.q, role: q.role, status: q.status }, signal });

export const updateUser = (id: string, body: UpdateUserBody) =>
  request<User>(v1(`/users/${seg(id)}`), { method: 'PATCH', body });

export const resetUserMfa = (id: string) => request<void>(v1(`/users/${seg(id)}/mfa`), { method: 'DELETE' });

export const listInvitations = (signal?: AbortSignal) =>
  request<InvitationList>(v1('/invitations'), { query: { limit: 100 }, signal });

export const createInvitation = (body: CreateInvitationBody) =>
  request<Invitation>(v1('/invitations'), { method: 'POST', body });

export const revokeInvitation = (id: string) =>
  request<void>(v1(`/invitations/${seg(id)}`), { method: 'DELETE' });

// ---- API tokens ----

export const listApiTokens = (signal?: AbortSignal) =>
  request<ApiTokenList>(v1('/api-tokens'), { query: { limit: 200 }, signal });

export const createApiToken = (body: CreateApiTokenBody) =>
  request<ApiTokenCreated>(v1('/api-tokens'), { method: 'POST', body });

export const revokeApiToken = (id: string) => request<ApiToken | void>(v1(`/api-tokens/${seg(id)}`), { method: 'DELETE' });

// ---- audit ----

export interface AuditFilter {
  actor_id?: string;
  action?: string;
  resource?: string;
  result?: string;
  since?: string;
  until?: string;
}

export const listAudit = (filter: AuditFilter & Page, signal?: AbortSignal) =>
  request<AuditList>(v1('/audit-logs'), { query: { ...filter, limit: filter.limit ?? 50 }, signal });

export const getAudit = (id: string) => request<AuditEntry>(v1(`/audit-logs/${seg(id)}`));

// ---- own account ----

export const getMfa = (signal?: AbortSignal) => request<MfaStatus>(v1('/auth/mfa'), { signal });

export const enrolTotp = () => request<MfaEnrolment>(v1('/auth/mfa/totp/enrol'), { method: 'POST' });

export const verifyTotp = (code: string) =>
  request<RecoveryCodes>(v1('/auth/mfa/totp/verify'), { method: 'POST', body: { code } });

// ---- sources (redundancy) ----

export const getSourcesConfig = (channelId: string, signal?: AbortSignal) =>
  request<SourcesConfig>(v1(`/channels/${seg(channelId)}/sources/config`), { signal });

export const putSourcesConfig = (channelId: string, body: SourcesConfigBody) =>
  request<SourcesConfig>(v1(`/channels/${seg(channelId)}/sources/config`), { method: 'PUT', body });

export const getSourcesStatus = (channelId: string, signal?: AbortSignal) =>
  request<SourcesStatus>(v1(`/channels/${seg(channelId)}/sources/status`), { signal });

export const switchSource = (channelId: string, to: 'primary' | 'secondary') =>
  request<SourcesStatus>(v1(`/channels/${seg(channelId)}/sources/switch`), { method: 'POST', body: { to } });

// ---- presets ----

export const listPresets = (signal?: AbortSignal) => request<PresetList>(v1('/presets'), { query: { limit: 200 }, signal });

export const createPreset = (body: PresetInput) => request<Preset>(v1('/presets'), { method: 'POST', body });

export const updatePreset = (id: string, body: PresetInput, version?: number | null) =>
  request<Preset>(v1(`/presets/${seg(id)}`), {
    method: 'PUT',
    body,
    headers: version != null ? { 'If-Match': `"${version}"` } : {},
  });

export const deletePreset = (id: string) => request<void>(v1(`/presets/${seg(id)}`), { method: 'DELETE' });

export const clonePreset = (id: string, name?: string) =>
  request<Preset>(v1(`/presets/${seg(id)}/clone`), { method: 'POST', body: name ? { name } : {} });

export const exportPresets = (includeBuiltin = false) =>
  request<PresetExport>(v1('/presets/export'), { query: { include_builtin: includeBuiltin } });

export const importPresets = (doc: unknown, onConflict: 'skip' | 'rename' = 'rename') =>
  request<PresetImportReport>(v1('/presets/import'), { method: 'POST', body: doc, query: { on_conflict: onConflict } });

// ---- cameras ----

export const listCameras = (signal?: AbortSignal, q: { q?: string; cursor?: string | undefined } = {}) =>
  request<CameraList>(v1('/cameras'), { query: { limit: 200, q: q.q, cursor: q.cursor }, signal });

export const getCamera = (id: string, signal?: AbortSignal) => request<Camera>(v1(`/cameras/${seg(id)}`), { signal });

export const getCameraStatus = (id: string, signal?: AbortSignal) =>
  request<CameraStatus>(v1(`/cameras/${seg(id)}/status`), { signal });

export const importCameras = (csv: string | Blob) =>
  request<CameraImportReport>(v1('/cameras/import'), { method: 'POST', raw: { data: csv, type: 'text/csv' } });

export const rotateCameraKey = (id: string) => request<Camera>(v1(`/cameras/${seg(id)}/rotate-key`), { method: 'POST' });

export const thumbnailUrl = (channelId: string) => v1(`/channels/${seg(channelId)}/thumbnail.jpg`);

export const createPlayToken = (channelId: string) =>
  request<PlayToken>(v1(`/channels/${seg(channelId)}/play-token`), { method: 'POST', body: { ttl_seconds: 3600 } });

// ---- recordings ----

export interface RecordingFilter {
  channel_id?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  tier?: string | undefined;
  status?: string | undefined;
}

export const listRecordings = (f: RecordingFilter & Page, signal?: AbortSignal) =>
  request<RecordingList>(v1('/recordings'), { query: { ...f, limit: f.limit ?? 50 }, signal });

export const getRecordingSettings = (channelId: string, signal?: AbortSignal) =>
  request<RecordingSettings>(v1(`/channels/${seg(channelId)}/recording`), { signal });

export const putRecordingSettings = (channelId: string, enabled: boolean) =>
  request<RecordingSettings>(v1(`/channels/${seg(channelId)}/recording`), { method: 'PUT', body: { enabled } });

export const getStorageUsage = (signal?: AbortSignal) => request<StorageUsage>(v1('/recordings/usage'), { signal });

export const deleteRecording = (id: string) => request<void>(v1(`/recordings/${seg(id)}`), { method: 'DELETE' });

// ---- analytics ----

/** `from` / `to` in Unix milliseconds. */
export const getDashboard = (from: number, to: number, signal?: AbortSignal) =>
  request<Dashboard>(v1('/analytics/dashboard'), { query: { from, to }, signal });

export const getSystemFigures = (signal?: AbortSignal) => request<SystemFigures>(v1('/analytics/system'), { signal });

export type { Recording };
