// Typed calls of the viewer platform (/api/v1/streams, /viewing, /viewer, /subscriptions,
// /viewer-admin). Shapes come from schema.d.ts (npm run gen:api).

import { request } from '../../api/client';
import type { components } from '../../api/schema';

type S = components['schemas'];
export type Stream = S['StreamView'];
export type StreamList = S['StreamList'];
export type SearchResults = S['SearchResults'];
export type CategoryList = S['CategoryList'];
export type Category = S['CategoryView'];
export type PlaybackGrant = S['PlaybackGrant'];
export type ViewingStarted = S['ViewingStarted'];
export type ViewerMe = S['ViewerMe'];
export type MySubscription = S['MySubscription'];
export type PlanList = S['PlanList'];
export type RecommendationList = S['RecommendationList'];
export type ContinueList = S['ContinueList'];
export type SavedList = S['SavedList'];
export type HistoryList = S['HistoryList'];
export type TrendingList = S['TrendingList'];
export type ViewerStats = S['ViewerStats'];
export type PersonList = S['PersonList'];
export type AccountList = S['AccountList'];
export type AdminSubscriptionList = S['AdminSubscriptionList'];
export type AdminAnalytics = S['AdminAnalytics'];
export type UpdateStream = S['UpdateStream'];
export type UpdateMe = S['UpdateViewerMe'];

export const watchApi = {
  live: () => request<StreamList>('/api/v1/streams/live'),
  featured: () => request<StreamList>('/api/v1/streams/featured'),
  trending: () => request<TrendingList>('/api/v1/streams/trending'),
  categories: () => request<CategoryList>('/api/v1/streams/categories'),
  search: (q: string) => request<SearchResults>('/api/v1/streams/search', { query: { q } }),
  stream: (id: string) => request<Stream>(`/api/v1/streams/${encodeURIComponent(id)}`),
  playback: (id: string, pin?: string) =>
    request<PlaybackGrant>(`/api/v1/streams/${encodeURIComponent(id)}/playback`, {
      method: 'POST',
      body: pin ? { pin } : {},
    }),
  startViewing: (stream_id: string, quality?: string) =>
    request<ViewingStarted>('/api/v1/viewing/start', {
      method: 'POST',
      body: { stream_id, device: 'web', ...(quality ? { quality } : {}) },
    }),
  progress: (id: string, position_seconds: number, quality?: string) =>
    request<unknown>(`/api/v1/viewing/${encodeURIComponent(id)}/progress`, {
      method: 'POST',
      body: { position_seconds, ...(quality ? { quality } : {}) },
    }),
  end: (id: string, position_seconds: number) =>
    request<unknown>(`/api/v1/viewing/${encodeURIComponent(id)}/end`, {
      method: 'POST',
      body: { position_seconds, reason: 'user_exit' },
    }),
  continueWatching: () => request<ContinueList>('/api/v1/viewing/continue'),
  saved: () => request<SavedList>('/api/v1/viewing/saved'),
  save: (id: string) => request<void>(`/api/v1/viewing/saved/${encodeURIComponent(id)}`, { method: 'PUT' }),
  unsave: (id: string) => request<void>(`/api/v1/viewing/saved/${encodeURIComponent(id)}`, { method: 'DELETE' }),
  history: () => request<HistoryList>('/api/v1/viewing/history'),
  clearHistory: () => request<void>('/api/v1/viewing/history', { method: 'DELETE' }),
  me: () => request<ViewerMe>('/api/v1/viewer/me'),
  updateMe: (body: UpdateMe) => request<ViewerMe>('/api/v1/viewer/me', { method: 'PATCH', body }),
  setParental: (body: { max_rating: string; pin?: string; current_pin?: string }) =>
    request<ViewerMe>('/api/v1/viewer/me/parental', { method: 'PUT', body }),
  deleteMe: (password: string) => request<void>('/api/v1/viewer/me', { method: 'DELETE', body: { password } }),
  follows: () => request<PersonList>('/api/v1/viewer/me/follows'),
  follow: (id: string) => request<void>(`/api/v1/viewer/me/follows/${encodeURIComponent(id)}`, { method: 'PUT' }),
  unfollow: (id: string) => request<void>(`/api/v1/viewer/me/follows/${encodeURIComponent(id)}`, { method: 'DELETE' }),
  blocked: () => request<PersonList>('/api/v1/viewer/me/blocked'),
  unblock: (id: string) => request<void>(`/api/v1/viewer/me/blocked/${encodeURIComponent(id)}`, { method: 'DELETE' }),
  stats: () => request<ViewerStats>('/api/v1/viewer/me/stats'),
  recommendations: () => request<RecommendationList>('/api/v1/viewer/me/recommendations'),
  plans: () => request<PlanList>('/api/v1/subscriptions/plans'),
  mySubscription: () => request<MySubscription>('/api/v1/subscriptions/me'),
  checkout: (plan: string, card_number: string) =>
    request<MySubscription>('/api/v1/subscriptions', { method: 'POST', body: { plan, card_number } }),
  cancel: () => request<MySubscription>('/api/v1/subscriptions/me/cancel', { method: 'POST' }),
  adminCatalog: () => request<StreamList>('/api/v1/viewer-admin/catalog'),
  updateStream: (id: string, body: UpdateStream) =>
    request<Stream>(`/api/v1/streams/${encodeURIComponent(id)}`, { method: 'PATCH', body }),
  createCategory: (name: string) => request<Category>('/api/v1/streams/categories', { method: 'POST', body: { name } }),
  deleteCategory: (id: string) =>
    request<void>(`/api/v1/streams/categories/${encodeURIComponent(id)}`, { method: 'DELETE' }),
  accounts: () => request<AccountList>('/api/v1/viewer-admin/accounts'),
  subscriptions: () => request<AdminSubscriptionList>('/api/v1/viewer-admin/subscriptions'),
  analytics: () => request<AdminAnalytics>('/api/v1/viewer-admin/analytics'),
};
