// Shapes of the /api/v1 answers the UI reads.
//
// Hand-written for now; to be replaced by types generated from /api/v1/openapi.json so the UI and
// the server cannot drift. Field names are the server's (snake_case).

/** `healthy` and `unhealthy` today; `degraded` and anything else are shown as given. */
export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy' | (string & {});

export interface ComponentHealth {
  status: HealthStatus;
  /** Optional human explanation, shown under the status when present. */
  detail?: string;
}

/** `GET /api/v1/health/overall` (200 when healthy, 503 with the same body when not). */
export interface OverallHealth {
  status: HealthStatus;
  version?: string;
  components: Record<string, ComponentHealth>;
}

/** `POST /api/v1/auth/login` request body. */
export interface LoginRequest {
  email: string;
  password: string;
  /** 6-digit TOTP code; sent only once the server has answered `code: "mfa_required"`. */
  totp?: string;
}

/** RFC 9457 `application/problem+json`, with Lunora's stable machine `code` and the `field` at fault. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  field?: string;
  instance?: string;
}
