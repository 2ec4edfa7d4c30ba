import { Link } from 'react-router';
import type { AppInfo } from '../apps';
import { AppIcon } from '../components/Icons';
import { useDocumentTitle } from '../useDocumentTitle';

/** Placeholder for an app that is not built yet; also answers its sub-paths. */
export function ComingSoon({ app }: { app: AppInfo }) {
  useDocumentTitle(app.name);
  return (
    <section className="placeholder" aria-labelledby="placeholder-heading">
      <span className="placeholder-icon">
        <AppIcon app={app.id} size={32} />
      </span>
      <p className="eyebrow">{app.path}</p>
      <h1 id="placeholder-heading">
        {app.name}
        <span className="visually-hidden"> — </span>
        <span className="soon">Coming soon</span>
      </h1>
      <p className="lead">{app.summary}</p>
      <p>
        <Link to="/" className="button button-secondary">
          Back to home
        </Link>
      </p>
    </section>
  );
}
