import { useCallback, useEffect, useRef, useState } from 'react';
import { Link } from 'react-router';
import { ApiError, getOverallHealth } from '../api/client';
import type { OverallHealth } from '../api/types';
import { APPS } from '../apps';
import { AppIcon } from '../components/Icons';
import { StatusBadge } from '../components/StatusBadge';
import { useDocumentTitle } from '../useDocumentTitle';

const REFRESH_MS = 15_000;

const COMPONENT_NAMES: Record<string, string> = {
  database: 'Database',
  disk: 'Disk',
  media_engine: 'Media engine',
};

function componentName(key: string): string {
  const known = COMPONENT_NAMES[key];
  if (known) return known;
  const words = key.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

type HealthState =
  | { kind: 'loading' }
  | { kind: 'ok'; health: OverallHealth; at: Date }
  | { kind: 'error'; message: string; at: Date };

function healthError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 404) return 'This server does not report its health yet.';
    if (err.status >= 500 && !err.problem.detail) {
      return `The server could not report its health (HTTP ${err.status}).`;
    }
    return err.message;
  }
  return 'The health check failed unexpectedly.';
}

function HealthPanel() {
  const [state, setState] = useState<HealthState>({ kind: 'loading' });
  const [checking, setChecking] = useState(false);
  const inflight = useRef<AbortController | null>(null);

  const check = useCallback(async () => {
    inflight.current?.abort();
    const ctrl = new AbortController();
    inflight.current = ctrl;
    setChecking(true);
    try {
      const health = await getOverallHealth(ctrl.signal);
      setState({ kind: 'ok', health, at: new Date() });
    } catch (err) {
      if (ctrl.signal.aborted) return;
      setState({ kind: 'error', message: healthError(err), at: new Date() });
    } finally {
      if (inflight.current === ctrl) {
        inflight.current = null;
        setChecking(false);
      }
    }
  }, []);

  useEffect(() => {
    void check();
    const timer = window.setInterval(() => void check(), REFRESH_MS);
    return () => {
      window.clearInterval(timer);
      inflight.current?.abort();
    };
  }, [check]);

  const components = state.kind === 'ok' ? Object.entries(state.health.components) : [];

  return (
    <section className="card health" aria-labelledby="health-heading">
      <div className="card-head">
        <h2 id="health-heading">Server health</h2>
        {state.kind === 'ok' && <StatusBadge status={state.health.status} />}
      </div>

      <div aria-live="polite" aria-busy={state.kind === 'loading'}>
        {state.kind === 'loading' && <p className="muted">Checking the server…</p>}

        {state.kind === 'error' && (
          <p className="notice notice-error" role="status">
            {state.message}
          </p>
        )}

        {state.kind === 'ok' &&
          (components.length === 0 ? (
            <p className="muted">The server reported no components.</p>
          ) : (
            <ul className="components" aria-label="Components">
              {components.map(([key, c]) => (
                <li key={key} data-component={key}>
                  <div>
                    <span className="component-name">{componentName(key)}</span>
                    {c.detail && <span className="component-detail">{c.detail}</span>}
                  </div>
                  <StatusBadge status={c.status ?? 'unknown'} />
                </li>
              ))}
            </ul>
          ))}
      </div>

      <div className="card-foot">
        <span className="muted small health-meta">
          {state.kind === 'ok' && state.health.version && <span>Version {state.health.version}</span>}
          {state.kind !== 'loading' && <span>Checked at {state.at.toLocaleTimeString()}</span>}
        </span>
        <button type="button" className="button button-ghost" onClick={() => void check()} disabled={checking}>
          {checking ? 'Checking…' : 'Check again'}
        </button>
      </div>
    </section>
  );
}

export function Home() {
  useDocumentTitle();
  return (
    <>
      <section className="hero">
        <h1>Lunora</h1>
        <p className="lead">
          Self-hosted live media server: ingest from redundant encoders, fail over without dropping
          viewers, restream everywhere, record and play back, all from one binary.
        </p>
      </section>

      <div className="home-grid">
        <section aria-labelledby="apps-heading">
          <h2 id="apps-heading" className="section-title">
            Apps
          </h2>
          <ul className="apps">
            {APPS.map((app) => (
              <li key={app.id}>
                <Link to={app.path} className="app-card">
                  <span className="app-icon">
                    <AppIcon app={app.id} />
                  </span>
                  <span className="app-text">
                    <span className="app-name">{app.name}</span>
                    <span className="app-summary">{app.summary}</span>
                  </span>
                  <span className="app-path">{app.path}</span>
                </Link>
              </li>
            ))}
          </ul>
        </section>

        <HealthPanel />
      </div>
    </>
  );
}
