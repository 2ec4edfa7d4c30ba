import { useEffect, useRef, useState, type ReactNode } from 'react';
import { Link, NavLink, Outlet, useLocation, useNavigate } from 'react-router';
import type { Permission } from '../api/types';
import { useSession } from '../auth/session';
import { humanize } from '../lib/format';
import { Icon, LogoMark, type IconName } from './Icons';

export interface NavItem {
  to: string;
  label: string;
  icon: IconName;
  /** Needed to see the item. */
  permission?: Permission;
  /** Marks a section that is not built yet. */
  soon?: boolean;
  end?: boolean;
}

export interface ConsoleApp {
  id: 'stream' | 'admin' | 'ads' | 'account';
  path: string;
  name: string;
  /** Needed to see the app in the switcher. */
  permission?: Permission;
  nav: NavItem[];
}

export const CONSOLE_APPS: ConsoleApp[] = [
  {
    id: 'stream',
    path: '/stream',
    name: 'Operator',
    permission: 'channels_write',
    nav: [
      { to: '/stream', label: 'Channels', icon: 'broadcast', end: true },
      { to: '/stream/setup', label: 'Quick setup', icon: 'wand' },
      { to: '/stream/destinations', label: 'Destinations', icon: 'send' },
      { to: '/stream/sessions', label: 'Session history', icon: 'history' },
    ],
  },
  {
    id: 'admin',
    path: '/admin',
    name: 'Admin',
    permission: 'users_manage',
    nav: [
      { to: '/admin', label: 'Overview', icon: 'gauge', end: true },
      { to: '/admin/users', label: 'Users', icon: 'users', permission: 'users_manage' },
      { to: '/admin/api-tokens', label: 'API tokens', icon: 'key', permission: 'api_tokens_manage' },
      { to: '/admin/audit', label: 'Audit log', icon: 'list', permission: 'audit_read' },
      { to: '/admin/sessions', label: 'Session logs', icon: 'history' },
      { to: '/admin/sources', label: 'Sources', icon: 'split' },
      { to: '/admin/presets', label: 'Presets', icon: 'sliders', permission: 'presets_manage' },
      { to: '/admin/cameras', label: 'Cameras', icon: 'camera' },
      { to: '/admin/recordings', label: 'Recordings', icon: 'play' },
      { to: '/admin/analytics', label: 'Analytics', icon: 'chart' },
      { to: '/admin/alerts', label: 'Alerts', icon: 'bell' },
    ],
  },
  {
    id: 'ads',
    path: '/ads',
    name: 'Ads',
    permission: 'activities_read',
    nav: [
      { to: '/ads', label: 'Dashboard', icon: 'gauge', end: true },
      { to: '/ads/campaigns', label: 'Campaigns', icon: 'chart', permission: 'campaigns_read' },
      { to: '/ads/clients', label: 'Clients', icon: 'users', permission: 'ad_clients_read' },
      { to: '/ads/shows', label: 'Shows and episodes', icon: 'play', permission: 'shows_read' },
      { to: '/ads/availability', label: 'Availability', icon: 'history', permission: 'availability_manage' },
      { to: '/ads/backups', label: 'Backups', icon: 'download', permission: 'users_manage' },
    ],
  },
  {
    id: 'account',
    path: '/account',
    name: 'Account',
    nav: [
      { to: '/account', label: 'Profile', icon: 'user', end: true },
      { to: '/account/security', label: 'Security', icon: 'lock' },
    ],
  },
];

function UserMenu() {
  const { me, signOut } = useSession();
  const navigate = useNavigate();
  const [open, setOpen] = useState(false);
  const ref = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open) return;
    const onDown = (e: MouseEvent) => {
      if (!ref.current?.contains(e.target as Node)) setOpen(false);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') setOpen(false);
    };
    document.addEventListener('mousedown', onDown);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('mousedown', onDown);
      document.removeEventListener('keydown', onKey);
    };
  }, [open]);

  if (!me) return null;
  const name = me.display_name || me.email;
  const initials = name
    .split(/[\s@.]+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w.charAt(0).toUpperCase())
    .join('');

  return (
    <div className="user-menu" ref={ref}>
      <button
        type="button"
        className="user-button"
        aria-expanded={open}
        aria-haspopup="true"
        aria-controls="user-menu-panel"
        onClick={() => setOpen((v) => !v)}
      >
        <span className="avatar" aria-hidden="true">
          {initials}
        </span>
        <span className="user-button-text">
          <span className="user-name">{name}</span>
          <span className="user-role">{humanize(me.role)}</span>
        </span>
      </button>
      {open && (
        <div className="user-panel" id="user-menu-panel">
          <p className="user-panel-head">
            <strong>{name}</strong>
            <span className="muted small">{me.email}</span>
          </p>
          <Link to="/account" className="user-panel-item" onClick={() => setOpen(false)}>
            <Icon name="user" /> Your account
          </Link>
          <Link to="/account/security" className="user-panel-item" onClick={() => setOpen(false)}>
            <Icon name="lock" /> Security and MFA
          </Link>
          <button
            type="button"
            className="user-panel-item"
            onClick={async () => {
              setOpen(false);
              // Leave the guarded page first, so its guard does not redirect on its own.
              navigate('/login?reason=signed_out', { replace: true });
              await signOut();
            }}
          >
            <Icon name="logout" /> Sign out
          </button>
        </div>
      )}
    </div>
  );
}

/** The signed-in frame: app switcher, the app's sections, the user menu. */
export function ConsoleLayout({ app, children, topEnd }: { app: ConsoleApp['id']; children?: ReactNode; topEnd?: ReactNode }) {
  const { me, can } = useSession();
  const location = useLocation();
  const current = CONSOLE_APPS.find((a) => a.id === app) ?? CONSOLE_APPS[0]!;
  const apps = CONSOLE_APPS.filter((a) => a.id !== 'account' && (!a.permission || can(a.permission)));
  const nav = current.nav.filter((n) => !n.permission || can(n.permission));
  const mainRef = useRef<HTMLElement>(null);

  // Move focus to the page on navigation, so keyboard and screen reader users land on it.
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    mainRef.current?.focus({ preventScroll: true });
  }, [location.pathname]);

  return (
    <div className="console" data-app={app}>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="console-top">
        <Link to="/" className="brand" aria-label="Lunora home">
          <LogoMark size={26} />
          <span className="brand-name">Lunora</span>
        </Link>
        {me && apps.length > 0 && (
          <nav aria-label="Apps" className="app-switch">
            {apps.map((a) => (
              <NavLink key={a.id} to={a.path} className={({ isActive }) => (isActive ? 'active' : '')}>
                {a.name}
              </NavLink>
            ))}
          </nav>
        )}
        <div className="console-top-end">
          {topEnd}
          <UserMenu />
        </div>
      </header>
      <div className="console-body">
        <nav aria-label={`${current.name} sections`} className="side-nav">
          <ul>
            {nav.map((n) => (
              <li key={n.to}>
                <NavLink to={n.to} end={n.end ?? false}>
                  <Icon name={n.icon} />
                  <span>{n.label}</span>
                  {n.soon && <span className="nav-soon">soon</span>}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <main id="main" tabIndex={-1} className="console-main" ref={mainRef}>
          {children ?? <Outlet />}
        </main>
      </div>
    </div>
  );
}
