import type { LoginRequest, OverallHealth, Problem, TokenPair } from './types';

/** A failed API call: the HTTP status (0 when the server could not be reached) and its problem. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;

  constructor(status: number, problem: Problem, fallback: string) {
    super(problem.detail ?? problem.title ?? fallback);
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem;
  }

  get code(): string | undefined {
    return this.problem.code;
  }

  /** The request field at fault, when the server named one. */
  get field(): string | undefined {
    return this.problem.field ?? undefined;
  }
}

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RequestOptions {
  method?: Method;
  body?: unknown;
  /** A body sent as it is (CSV, a file), with its content type; instead of `body`. */
  raw?: { data: string | Blob; type: string };
  /** Query parameters; `undefined` and empty values are left out. */
  query?: Record<string, string | number | boolean | undefined | null>;
  /** Non-2xx statuses whose JSON body is still a normal answer (e.g. 503 from a health check). */
  acceptStatuses?: number[];
  signal?: AbortSignal | undefined;
  /** Extra headers, e.g. `If-Match`. */
  headers?: Record<string, string>;
  /**
   * Do not refresh the session on a 401 (sign-in itself, the refresh call). Defaults to false:
   * an expired access token is renewed once and the request retried.
   */
  noRefresh?: boolean;
}

const CSRF_COOKIE = 'lunora_csrf';
const CSRF_HEADER = 'x-csrf-token';

/** The CSRF token the server set at sign-in (a readable cookie), for state-changing requests. */
export function csrfToken(): string | undefined {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === CSRF_COOKIE) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

// ---- session expiry -------------------------------------------------------------------------

type ExpiryListener = (reason: string) => void;
const expiryListeners = new Set<ExpiryListener>();

/** Called when the session is gone for good (refresh refused): the app sends the user to sign in. */
export function onSessionExpired(fn: ExpiryListener): () => void {
  expiryListeners.add(fn);
  return () => expiryListeners.delete(fn);
}

function sessionExpired(reason: string) {
  for (const fn of expiryListeners) fn(reason);
}

/** 401 codes that a fresh access token cures; others (revoked, idle, disabled) end the session. */
const REFRESHABLE = new Set(['token_expired', 'unauthorized', 'invalid_token']);

let refreshing: Promise<boolean> | null = null;

/** Renews the access token from the refresh cookie; concurrent callers share one attempt. */
export function refreshSession(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      await send<TokenPair>('/api/v1/auth/refresh', { method: 'POST', noRefresh: true });
      return true;
    } catch {
      return false;
    } finally {
      // Let the next expiry (15 minutes on) start a new attempt.
      setTimeout(() => (refreshing = null), 0);
    }
  })();
  return refreshing;
}

// ---- requests -------------------------------------------------------------------------------

function isJson(res: Response): boolean {
  const type = res.headers.get('content-type') ?? '';
  return /\bjson\b/i.test(type); // application/json and application/problem+json
}

async function readProblem(res: Response): Promise<Problem> {
  if (!isJson(res)) return { status: res.status };
  try {
    const body: unknown = await res.json();
    return body !== null && typeof body === 'object' ? (body as Problem) : { status: res.status };
  } catch {
    return { status: res.status };
  }
}

function withQuery(path: string, query: RequestOptions['query']): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue;
    params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}${path.includes('?') ? '&' : '?'}${qs}` : path;
}

async function send<T>(path: string, opts: RequestOptions): Promise<T> {
  const method = opts.method ?? 'GET';
  const headers: Record<string, string> = {
    Accept: 'application/json, application/problem+json',
    ...opts.headers,
  };
  const init: RequestInit = { method, headers, credentials: 'same-origin' };
  if (opts.signal) init.signal = opts.signal;
  if (opts.raw) {
    headers['Content-Type'] = opts.raw.type;
    init.body = opts.raw.data;
  } else if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  if (method !== 'GET') {
    const csrf = csrfToken();
    if (csrf) headers[CSRF_HEADER] = csrf;
  }

  let res: Response;
  try {
    res = await fetch(withQuery(path, opts.query), init);
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw new ApiError(
      0,
      { code: 'network_error' },
      'Cannot reach the Lunora server. Check your connection and try again.',
    );
  }

  if (res.ok || opts.acceptStatuses?.includes(res.status)) {
    if (res.status === 204 || !isJson(res)) return undefined as T;
    return (await res.json()) as T;
  }
  throw new ApiError(res.status, await readProblem(res), `The server answered HTTP ${res.status}.`);
}

/**
 * JSON request to the Lunora API on this origin. Browser sessions ride on HttpOnly cookies; a
 * state-changing request carries the CSRF header. An expired access token is refreshed once and
 * the request retried; when the session cannot be renewed, `onSessionExpired` listeners hear it.
 */
export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  try {
    return await send<T>(path, opts);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401 || opts.noRefresh) throw err;
    if (err.code && REFRESHABLE.has(err.code) && (await refreshSession())) {
      try {
        return await send<T>(path, { ...opts, noRefresh: true });
      } catch (again) {
        if (again instanceof ApiError && again.status === 401) sessionExpired(again.code ?? 'unauthorized');
        throw again;
      }
    }
    sessionExpired(err.code ?? 'unauthorized');
    throw err;
  }
}

/** Overall health; a 503 carries the same body and is a normal answer ("unhealthy"). */
export async function getOverallHealth(signal?: AbortSignal): Promise<OverallHealth> {
  const body = await request<Partial<OverallHealth> | undefined>('/api/v1/health/overall', {
    acceptStatuses: [503],
    signal,
    noRefresh: true,
  });
  if (!body || typeof body.status !== 'string') {
    throw new ApiError(0, { code: 'bad_response' }, 'The server sent a health answer the UI does not understand.');
  }
  const components = body.components && typeof body.components === 'object' ? body.components : {};
  return { ...body, status: body.status, components } as OverallHealth;
}

/** Signs in; on success the server sets the session cookies. */
export async function login(body: LoginRequest): Promise<TokenPair> {
  return send<TokenPair>('/api/v1/auth/login', { method: 'POST', body, noRefresh: true });
}

/** Ends the session; the server clears the cookies. */
export async function logout(): Promise<void> {
  await send<void>('/api/v1/auth/logout', { method: 'POST', noRefresh: true });
}
