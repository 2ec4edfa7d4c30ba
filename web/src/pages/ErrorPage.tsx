import { isRouteErrorResponse, useRouteError } from 'react-router';
import { useDocumentTitle } from '../useDocumentTitle';

/** Shown instead of a blank screen if a page throws while rendering. */
export function ErrorPage() {
  useDocumentTitle('Error');
  const error = useRouteError();
  const detail = isRouteErrorResponse(error)
    ? `${error.status} ${error.statusText}`
    : error instanceof Error
      ? error.message
      : String(error);
  return (
    <main className="container site-main placeholder" id="main">
      <p className="eyebrow">Unexpected error</p>
      <h1>Something went wrong</h1>
      <p className="lead">This page hit a problem it could not recover from. Reloading usually helps.</p>
      <pre className="error-detail">{detail}</pre>
      <p>
        <a href="/" className="button button-primary">
          Reload Lunora
        </a>
      </p>
    </main>
  );
}
