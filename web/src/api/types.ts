// Shapes of the /api/v1 answers the UI reads, named after the server's schemas.
//
// Everything here comes from schema.d.ts, which `npm run gen:api` generates from the server's
// OpenAPI document (snapshot in openapi.json; crates/lunora/tests/console.rs fails when the
// snapshot and the server disagree). Only values the server documents as free-form JSON (the
// engine's input status) are described by hand, below.

import type { components } from './schema';

type S = components['schemas'];

/** A problem answer; partial because the client also makes its own (network errors). */
export type Problem = Partial<S['Problem']>;
export type HealthStatus = S['HealthStatus'] | (string & {});
export type ComponentHealth = S['ComponentHealth'];
export type OverallHealth = S['OverallHealth'];
export type EngineReport = S['EngineReport'];
export type DestinationsReport = S['DestinationsReport'];

export type LoginRequest = S['LoginRequest'];
export type TokenPair = S['TokenPair'];
export type Me = S['Me'];
export type Permission = S['Permission'];
export type Role = S['Role'];
export type MfaStatus = S['MfaStatus'];
export type MfaEnrolment = S['TotpEnrolment'];
export type RecoveryCodes = S['RecoveryCodes'];

export type Channel = S['ChannelView'];
export type ChannelList = S['ChannelList'];
export type CreateChannelBody = S['CreateChannel'];

export type Destination = S['DestinationView'];
export type DestinationList = S['DestinationList'];
export type CreateDestinationBody = S['CreateDestination'];
export type UpdateDestinationBody = S['UpdateDestination'];
export type DestinationTestResult = S['TestResult'];

export type StreamingStatus = S['StreamingStatus'];
export type DestinationStatus = S['DestinationStatus'];
export type SessionDestination = S['SessionDestinationView'];
export type SessionEvent = S['SessionEventView'];

/** A streaming session (`GET /api/v1/streaming/sessions[/{id}]`). */
export type SessionView = S['SessionView'];
export type SessionList = S['SessionList'];

export type User = S['UserView'];
export type UserList = S['UserList'];
export type UpdateUserBody = S['UpdateUser'];
export type Invitation = S['InvitationView'];
export type InvitationList = S['InvitationList'];
export type CreateInvitationBody = S['CreateInvitation'];

export type ApiToken = S['ApiTokenView'];
export type ApiTokenList = S['ApiTokenList'];
export type ApiTokenCreated = S['CreatedApiToken'];
export type CreateApiTokenBody = S['CreateApiToken'];

export type Alert = S['AlertView'];
export type AlertList = S['AlertList'];

export type AuditEntry = S['AuditView'];
export type AuditList = S['AuditList'];

/**
 * The media engine's view of a channel's input (`ChannelView.status`, `StreamingStatus.input`),
 * documented by the server as a free-form object.
 */
export interface InputStatus {
  input_state: 'idle' | 'live' | (string & {});
  /** The input whose frames reach the outputs. */
  active_input?: string | null;
  inputs?: string[];
  /** Payload bits per second over the last few seconds. */
  bitrate_bps?: number;
  fps?: number;
  video?: { codec: string; width: number; height: number } | null;
  audio?: { codec: string; sample_rate: number; channels: number } | null;
  /** Unix milliseconds; absent while idle. */
  started_at?: number | null;
  last_frame_age_ms?: number | null;
}

export type SourcesConfig = S['SourcesConfigView'];
export type SourcesConfigBody = S['SourcesConfigRequest'];
export type SourceView = S['SourceView'];
export type SourcesStatus = S['SourcesStatusView'];
export type SourceStatus = S['SourceStatusView'];

export type Preset = S['PresetView'];
export type PresetList = S['PresetList'];
export type PresetInput = S['PresetInput'];
export type PresetExport = S['PresetExport'];
export type VideoSettings = S['VideoSettingsDoc'];
export type AudioSettings = S['AudioSettingsDoc'];

export type PresetImportReport = S['PresetImportReport'];

export type Camera = S['CameraView'];
export type CameraList = S['CameraList'];
export type CameraStatus = S['CameraStatus'];
export type CameraImportReport = S['CameraImportReport'];
export type CameraImportRow = S['ImportRow'];

export type Recording = S['RecordingView'];
export type RecordingList = S['RecordingList'];
export type RecordingSettings = S['RecordingSettingsView'];
export type StorageUsage = S['StorageUsage'];

export type Dashboard = S['Dashboard'];
export type SystemFigures = S['SystemFigures'];
export type PlayToken = S['PlayTokenView'];
