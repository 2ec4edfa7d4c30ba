// Viewer platform, social part: live chat of a stream, likes, reports and the moderation queue
// (crates/api/src/social.rs). A stream id is a channel id.

import { request } from './client';

const v1 = (p: string) => `/api/v1${p}`;
const seg = encodeURIComponent;

/** A chat message. `body` is plain text: render it as text, never as HTML. */
export interface ChatMessage {
  id: string;
  stream_id: string;
  user_id: string;
  display_name: string;
  body: string;
  created_at: string;
}

export interface ChatHistory {
  items: ChatMessage[];
  next_before?: string | null;
  slow_mode_seconds: number;
}

export interface Report {
  id: string;
  reporter_id?: string | null;
  target_type: 'message' | 'user' | 'stream' | string;
  target_id: string;
  stream_id?: string | null;
  target_user_id?: string | null;
  excerpt: string;
  reason: string;
  details: string;
  status: 'pending' | 'reviewed' | 'resolved' | string;
  moderator_id?: string | null;
  action?: string | null;
  note: string;
  created_at: string;
  reviewed_at?: string | null;
  resolved_at?: string | null;
}

export interface ModerationAction {
  id: string;
  moderator_id?: string | null;
  action: string;
  stream_id?: string | null;
  target_type: string;
  target_id: string;
  target_user_id?: string | null;
  reason: string;
  duration_seconds?: number | null;
  report_id?: string | null;
  created_at: string;
}

export interface Likes {
  stream_id: string;
  count: number;
  liked: boolean;
}

export const REPORT_REASONS = ['spam', 'harassment', 'inappropriate', 'copyright', 'other'] as const;
export const RESOLUTIONS = ['dismiss', 'delete_message', 'timeout_user', 'ban_user'] as const;

export const chatHistory = (streamId: string, signal?: AbortSignal) =>
  request<ChatHistory>(v1(`/streams/${seg(streamId)}/chat/messages`), { signal, query: { limit: 100 } });

export const deleteChatMessage = (streamId: string, messageId: string, reason?: string | undefined) =>
  request<ModerationAction>(v1(`/streams/${seg(streamId)}/chat/messages/${seg(messageId)}`), {
    method: 'DELETE',
    query: { reason },
  });

export const timeoutChatUser = (streamId: string, userId: string, minutes: number, reason?: string) =>
  request<ModerationAction>(v1(`/streams/${seg(streamId)}/chat/timeouts`), {
    method: 'POST',
    body: { user_id: userId, minutes, reason },
  });

export const setSlowMode = (streamId: string, seconds: number) =>
  request<{ slow_mode_seconds: number }>(v1(`/streams/${seg(streamId)}/chat/settings`), {
    method: 'PUT',
    body: { slow_mode_seconds: seconds },
  });

export const getLikes = (streamId: string, signal?: AbortSignal) =>
  request<Likes>(v1(`/streams/${seg(streamId)}/likes`), { signal });

export const setLiked = (streamId: string, liked: boolean) =>
  request<Likes>(v1(`/streams/${seg(streamId)}/like`), { method: liked ? 'PUT' : 'DELETE' });

export const reportContent = (body: { target_type: string; target_id: string; reason: string; details?: string | undefined }) =>
  request<Report>(v1('/social/report'), { method: 'POST', body });

export const listReports = (status: string | undefined, signal?: AbortSignal) =>
  request<{ items: Report[] }>(v1('/moderation/reports'), { signal, query: { status } });

export const reviewReport = (id: string, note?: string) =>
  request<Report>(v1(`/moderation/reports/${seg(id)}/review`), { method: 'POST', body: { note } });

export const resolveReport = (id: string, body: { action: string; minutes?: number | undefined; note?: string | undefined }) =>
  request<Report>(v1(`/moderation/reports/${seg(id)}/resolve`), { method: 'POST', body });

export const listModerationActions = (signal?: AbortSignal) =>
  request<{ items: ModerationAction[] }>(v1('/moderation/actions'), { signal });
