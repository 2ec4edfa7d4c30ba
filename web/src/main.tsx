import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createBrowserRouter, RouterProvider, type RouteObject } from 'react-router';
import { APPS } from './apps';
import { Layout } from './components/Layout';
import { ComingSoon } from './pages/ComingSoon';
import { ErrorPage } from './pages/ErrorPage';
import { Home } from './pages/Home';
import { Login } from './pages/Login';
import { NotFound } from './pages/NotFound';
import './styles.css';

// Client-side routes. The server answers every non-API, non-asset path with index.html, so deep
// links work; unknown paths land on NotFound here.
const routes: RouteObject[] = [
  { path: '/login', element: <Login />, errorElement: <ErrorPage /> },
  {
    path: '/',
    element: <Layout />,
    errorElement: <ErrorPage />,
    children: [
      { index: true, element: <Home /> },
      ...APPS.map((app) => ({ path: `${app.path}/*`, element: <ComingSoon app={app} /> })),
      { path: '*', element: <NotFound /> },
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
