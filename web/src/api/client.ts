import type { LoginRequest, OverallHealth, Problem } from './types';

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
}

interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  body?: unknown;
  /** Non-2xx statuses whose JSON body is still a normal answer (e.g. 503 from a health check). */
  acceptStatuses?: number[];
  signal?: AbortSignal | undefined;
}

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

/** JSON request to the Lunora API on this origin; browser sessions ride on HttpOnly cookies. */
export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json, application/problem+json' };
  const init: RequestInit = {
    method: opts.method ?? 'GET',
    headers,
    credentials: 'same-origin',
  };
  if (opts.signal) init.signal = opts.signal;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }

  let res: Response;
  try {
    res = await fetch(path, init);
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

/** Overall health; a 503 carries the same body and is a normal answer ("unhealthy"). */
export async function getOverallHealth(signal?: AbortSignal): Promise<OverallHealth> {
  const body = await request<Partial<OverallHealth> | undefined>('/api/v1/health/overall', {
    acceptStatuses: [503],
    signal,
  });
  if (!body || typeof body.status !== 'string') {
    throw new ApiError(0, { code: 'bad_response' }, 'The server sent a health answer the UI does not understand.');
  }
  const components = body.components && typeof body.components === 'object' ? body.components : {};
  return { ...body, status: body.status, components };
}

/** Signs in; on success the server sets the session cookie. The body is not needed yet. */
export async function login(body: LoginRequest): Promise<void> {
  await request<unknown>('/api/v1/auth/login', { method: 'POST', body });
}
