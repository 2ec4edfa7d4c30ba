import { Link, useLocation } from 'react-router';
import { useDocumentTitle } from '../useDocumentTitle';

export function NotFound() {
  useDocumentTitle('Page not found');
  const { pathname } = useLocation();
  return (
    <section className="placeholder" aria-labelledby="notfound-heading">
      <p className="eyebrow">Error 404</p>
      <h1 id="notfound-heading">Page not found</h1>
      <p className="lead">
        There is no page at <code>{pathname}</code>. Check the address, or start again from home.
      </p>
      <p>
        <Link to="/" className="button button-primary">
          Go to home
        </Link>
      </p>
    </section>
  );
}
