import { Link, NavLink, Outlet } from 'react-router';
import { APPS } from '../apps';
import { homeFor, useSession } from '../auth/session';
import { LogoMark } from './Icons';

/** Frame for every page but sign-in: skip link, header with the app navigation, footer. */
export function Layout() {
  const { me } = useSession();
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="site-header">
        <div className="container header-inner">
          <Link to="/" className="brand" aria-label="Lunora home">
            <LogoMark />
            <span className="brand-name">Lunora</span>
          </Link>
          <nav aria-label="Apps" className="site-nav">
            <ul>
              {APPS.map((app) => (
                <li key={app.id}>
                  <NavLink to={app.path}>{app.nav}</NavLink>
                </li>
              ))}
            </ul>
          </nav>
          {me ? (
            <Link to={homeFor(me)} className="button button-primary header-signin">
              Open console
            </Link>
          ) : (
            <Link to="/login" className="button button-secondary header-signin">
              Sign in
            </Link>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1} className="container site-main">
        <Outlet />
      </main>
      <footer className="site-footer">
        <div className="container footer-inner">
          <span>Lunora · self-hosted live media server</span>
          {/* A full page load: the server answers /api/v1/docs itself, outside this app. */}
          <a href="/api/v1/docs">API reference</a>
        </div>
      </footer>
    </div>
  );
}
