import type { ReactNode } from 'react';
import { Navigate, useLocation } from 'react-router';
import type { Permission } from '../api/types';
import { AccessDenied } from '../pages/AccessDenied';
import { useSession } from './session';

interface Props {
  /** Every one of these is needed; none means "signed in". */
  permissions?: readonly Permission[] | undefined;
  /** What the page is, for the access-denied message. */
  what?: string | undefined;
  children: ReactNode;
  /** Wraps the access-denied page (e.g. in the signed-in frame when the guard sits above it). */
  frame?: ((content: ReactNode) => ReactNode) | undefined;
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

/**
 * Guards a route: signed-out visitors go to sign-in (and come back after), accounts without the
 * permission see the access-denied page, sessions that must enrol MFA go to enrolment first.
 * The API refuses these calls anyway; this only keeps the screens honest.
 */
export function RequireAuth({ permissions = [], what, children, frame }: Props) {
  const { status, me } = useSession();
  const location = useLocation();

  if (status === 'loading') return <Loading label="Checking your session…" />;
  if (!me) {
    const next = encodeURIComponent(location.pathname + location.search);
    const reason = status === 'expired' ? '&reason=expired' : '';
    return <Navigate to={`/login?next=${next}${reason}`} replace />;
  }
  if (me.next_step === 'mfa_enrolment' && location.pathname !== '/account/security') {
    return <Navigate to="/account/security" replace />;
  }
  const missing = permissions.filter((p) => !me.permissions.includes(p));
  if (missing.length) {
    const denied = <AccessDenied what={what} missing={missing} />;
    return <>{frame ? frame(denied) : denied}</>;
  }
  return <>{children}</>;
}
