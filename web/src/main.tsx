import { lazy, StrictMode, Suspense, type ComponentType, type ReactNode } from 'react';
import { createRoot } from 'react-dom/client';
import { createBrowserRouter, Outlet, RouterProvider, type RouteObject } from 'react-router';
import { APPS } from './apps';
import { Loading, RequireAuth } from './auth/RequireAuth';
import { SessionProvider } from './auth/session';
import { ConsoleLayout } from './components/ConsoleLayout';
import { Layout } from './components/Layout';
import { ToastProvider } from './components/Toasts';
import { ComingSoon } from './pages/ComingSoon';
import { ErrorPage } from './pages/ErrorPage';
import { Home } from './pages/Home';
import { Login } from './pages/Login';
import { NotFound } from './pages/NotFound';
import './styles.css';

// Each app's pages load on first use, so the sign-in page and the home page stay small.
function page<M, K extends keyof M>(load: () => Promise<M>, name: K) {
  const Lazy = lazy(() => load().then((m) => ({ default: m[name] as ComponentType<Record<string, unknown>> })));
  return function Page(props: Record<string, unknown>) {
    return (
      <Suspense fallback={<Loading />}>
        <Lazy {...props} />
      </Suspense>
    );
  };
}

const ChannelsPage = page(() => import('./pages/stream/Channels'), 'ChannelsPage');
const SetupPage = page(() => import('./pages/stream/Setup'), 'SetupPage');
const DestinationsPage = page(() => import('./pages/stream/Destinations'), 'DestinationsPage');
const LiveControlPage = page(() => import('./pages/stream/LiveControl'), 'LiveControlPage');
const SessionsPage = page(() => import('./pages/stream/Sessions'), 'SessionsPage');
const SessionDetailPage = page(() => import('./pages/stream/Sessions'), 'SessionDetailPage');
const AdminOverviewPage = page(() => import('./pages/admin/Overview'), 'AdminOverviewPage');
const UsersPage = page(() => import('./pages/admin/Users'), 'UsersPage');
const ApiTokensPage = page(() => import('./pages/admin/ApiTokens'), 'ApiTokensPage');
const AuditPage = page(() => import('./pages/admin/Audit'), 'AuditPage');
const SourcesPage = page(() => import('./pages/admin/Sources'), 'SourcesPage');
const PresetsPage = page(() => import('./pages/admin/Presets'), 'PresetsPage');
const CamerasPage = page(() => import('./pages/admin/Cameras'), 'CamerasPage');
const CameraPage = page(() => import('./pages/admin/Cameras'), 'CameraPage');
const RecordingsPage = page(() => import('./pages/admin/Recordings'), 'RecordingsPage');
const AnalyticsPage = page(() => import('./pages/admin/Analytics'), 'AnalyticsPage');
const AlertsPage = page(() => import('./pages/admin/Alerts'), 'AlertsPage');
const AdsDashboardPage = page(() => import('./pages/ads/Dashboard'), 'AdsDashboardPage');
const AdsFrame = page(() => import('./pages/ads/Frame'), 'AdsFrame');
const CampaignsPage = page(() => import('./pages/ads/Campaigns'), 'CampaignsPage');
const CampaignPage = page(() => import('./pages/ads/Campaigns'), 'CampaignPage');
const AdClientsPage = page(() => import('./pages/ads/Clients'), 'ClientsPage');
const AdClientPage = page(() => import('./pages/ads/Clients'), 'ClientPage');
const ShowsPage = page(() => import('./pages/ads/Shows'), 'ShowsPage');
const AvailabilityPage = page(() => import('./pages/ads/Availability'), 'AvailabilityPage');
const BackupsPage = page(() => import('./pages/ads/Backups'), 'BackupsPage');
const ProfilePage = page(() => import('./pages/Account'), 'ProfilePage');
const SecurityPage = page(() => import('./pages/Account'), 'SecurityPage');
const AcceptInvitationPage = page(() => import('./pages/auth/AuthPages'), 'AcceptInvitationPage');
const ResetPasswordPage = page(() => import('./pages/auth/AuthPages'), 'ResetPasswordPage');
const VerifyEmailPage = page(() => import('./pages/auth/AuthPages'), 'VerifyEmailPage');
const WatchPortal = page(() => import('./pages/watch/Portal'), 'WatchPortal');
const WatchPlayerPage = page(() => import('./pages/watch/Player'), 'WatchPlayerPage');
const WatchProfilePage = page(() => import('./pages/watch/Profile'), 'WatchProfilePage');
const WatchUpgradePage = page(() => import('./pages/watch/Upgrade'), 'WatchUpgradePage');
const WatchAdminPage = page(() => import('./pages/watch/Admin'), 'WatchAdminPage');
const ChatPage = page(() => import('./pages/watch/ChatPage'), 'ChatPage');
const ModerationPage = page(() => import('./pages/watch/Moderation'), 'ModerationPage');

function Root() {
  return (
    <ToastProvider>
      <SessionProvider>
        <Outlet />
      </SessionProvider>
    </ToastProvider>
  );
}

type Perms = Parameters<typeof RequireAuth>[0]['permissions'];

/** A guard inside an app's frame. */
const guard = (element: ReactNode, permissions: Perms, what: string) => (
  <RequireAuth permissions={permissions} what={what}>
    {element}
  </RequireAuth>
);

/** An app's frame behind its guard; a role without access sees access-denied in the plain frame. */
const app = (id: 'stream' | 'admin' | 'account', permissions: Perms, what: string) => (
  <RequireAuth permissions={permissions} what={what} frame={(c) => <ConsoleLayout app="account">{c}</ConsoleLayout>}>
    <ConsoleLayout app={id} />
  </RequireAuth>
);

// Client-side routes. The server answers every non-API, non-asset path with index.html, so deep
// links work; unknown paths land on NotFound here.
const routes: RouteObject[] = [
  {
    element: <Root />,
    errorElement: <ErrorPage />,
    children: [
      { path: '/login', element: <Login /> },
      { path: '/accept-invitation', element: <AcceptInvitationPage /> },
      { path: '/reset-password', element: <ResetPasswordPage /> },
      { path: '/verify-email', element: <VerifyEmailPage /> },
      // Viewer platform, social part: a stream's chat on its own page (anyone may read) and
      // the moderation queue.
      { path: '/watch/:streamId/chat', element: <ChatPage /> },
      {
        path: '/watch/admin/moderation',
        element: guard(<ModerationPage />, ['chat_moderate'], 'The moderation queue'),
      },
      {
        // Operator app: channels, quick setup, destinations, live control, session history.
        path: '/stream',
        element: app('stream', ['channels_write'], 'The operator console'),
        children: [
          { index: true, element: <ChannelsPage /> },
          { path: 'setup', element: <SetupPage /> },
          { path: 'destinations', element: <DestinationsPage /> },
          { path: 'channels/:channelId', element: <LiveControlPage /> },
          { path: 'sessions', element: <SessionsPage /> },
          { path: 'sessions/:sessionId', element: <SessionDetailPage /> },
          { path: '*', element: <NotFound /> },
        ],
      },
      {
        // Admin app.
        path: '/admin',
        element: app('admin', ['users_manage'], 'The admin console'),
        children: [
          { index: true, element: <AdminOverviewPage /> },
          { path: 'users', element: guard(<UsersPage />, ['users_manage'], 'User management') },
          { path: 'api-tokens', element: guard(<ApiTokensPage />, ['api_tokens_manage'], 'API tokens') },
          { path: 'audit', element: guard(<AuditPage />, ['audit_read'], 'The audit log') },
          { path: 'sessions', element: <SessionsPage base="/admin/sessions" /> },
          { path: 'sessions/:sessionId', element: <SessionDetailPage base="/admin/sessions" /> },
          { path: 'sources', element: <SourcesPage /> },
          { path: 'presets', element: guard(<PresetsPage />, ['presets_manage'], 'Encoding presets') },
          { path: 'cameras', element: <CamerasPage /> },
          { path: 'cameras/:cameraId', element: <CameraPage /> },
          { path: 'recordings', element: <RecordingsPage /> },
          { path: 'analytics', element: <AnalyticsPage /> },
          { path: 'alerts', element: <AlertsPage /> },
          { path: '*', element: <NotFound /> },
        ],
      },
      {
        // Podcast advertising: dashboards per role, campaigns, clients, shows, backups.
        path: '/ads',
        element: (
          <RequireAuth permissions={['activities_read']} what="The advertising workspace" frame={(c) => <ConsoleLayout app="account">{c}</ConsoleLayout>}>
            <AdsFrame />
          </RequireAuth>
        ),
        children: [
          { index: true, element: <AdsDashboardPage /> },
          { path: 'campaigns', element: guard(<CampaignsPage />, ['campaigns_read'], 'Campaigns') },
          { path: 'campaigns/:campaignId', element: guard(<CampaignPage />, ['campaigns_read'], 'Campaigns') },
          { path: 'clients', element: guard(<AdClientsPage />, ['ad_clients_read'], 'Clients') },
          { path: 'clients/:clientId', element: guard(<AdClientPage />, ['ad_clients_read'], 'Clients') },
          { path: 'shows', element: guard(<ShowsPage />, ['shows_read'], 'Shows') },
          { path: 'availability', element: guard(<AvailabilityPage />, ['availability_manage'], 'Availability') },
          { path: 'backups', element: guard(<BackupsPage />, ['users_manage'], 'Backups') },
          { path: '*', element: <NotFound /> },
        ],
      },
      {
        path: '/account',
        element: app('account', [], 'Your account'),
        children: [
          { index: true, element: <ProfilePage /> },
          { path: 'security', element: <SecurityPage /> },
        ],
      },
      {
        path: '/',
        element: <Layout />,
        children: [
          { index: true, element: <Home /> },
          // Viewer portal: open to everyone; signed-in pages ask for sign-in themselves.
          { path: 'watch', element: <WatchPortal /> },
          { path: 'watch/profile', element: <WatchProfilePage /> },
          { path: 'watch/upgrade', element: <WatchUpgradePage /> },
          { path: 'watch/admin', element: guard(<WatchAdminPage />, ['catalog_manage'], 'The viewer admin') },
          { path: 'watch/:streamId', element: <WatchPlayerPage /> },
          ...APPS.filter((a) => !['stream', 'admin', 'ads', 'watch'].includes(a.id)).map((app) => ({
            path: `${app.path}/*`,
            element: <ComingSoon app={app} />,
          })),
          { path: '*', element: <NotFound /> },
        ],
      },
    ],
  },
];

const root = document.getElementById('root');
if (!root) throw new Error('#root element missing from index.html');

createRoot(root).render(
  <StrictMode>
    <RouterProvider router={createBrowserRouter(routes)} />
  </StrictMode>,
);
