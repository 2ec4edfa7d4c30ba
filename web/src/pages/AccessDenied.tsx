import { Link } from 'react-router';
import { homeFor, useSession } from '../auth/session';
import { humanize } from '../lib/format';
import { useDocumentTitle } from '../useDocumentTitle';

/** Shown on a route the signed-in role may not use. */
export function AccessDenied({ what, missing = [] }: { what?: string | undefined; missing?: readonly string[] }) {
  useDocumentTitle('Access denied');
  const { me } = useSession();
  return (
    <section className="placeholder" aria-labelledby="denied-heading" data-testid="access-denied">
      <span className="placeholder-icon placeholder-icon-bad" aria-hidden="true">
        <svg width="32" height="32" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="1.75" strokeLinecap="round" strokeLinejoin="round">
          <rect x="5" y="11" width="14" height="10" rx="2" />
          <path d="M8 11V7a4 4 0 0 1 8 0v4" />
        </svg>
      </span>
      <p className="eyebrow">Error 403</p>
      <h1 id="denied-heading">Access denied</h1>
      <p className="lead">
        {what ? `${what} is` : 'This page is'} not available to your role
        {me ? (
          <>
            {' '}
            (<strong>{humanize(me.role)}</strong>)
          </>
        ) : null}
        . Ask an administrator if you need it.
      </p>
      {missing.length > 0 && (
        <p className="muted small">
          Needs: {missing.map((p) => humanize(p)).join(', ')}
        </p>
      )}
      <p>
        <Link to={homeFor(me)} className="button button-primary">
          Go to your start page
        </Link>
      </p>
    </section>
  );
}
