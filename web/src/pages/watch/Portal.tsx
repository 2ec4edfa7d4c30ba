import { useEffect, useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { useSession } from '../../auth/session';
import { PageHeader } from '../../components/ui';
import { useDocumentTitle } from '../../useDocumentTitle';
import { watchApi, type Stream } from './api';
import { StreamGrid } from './StreamCard';

interface Item {
  stream: Stream;
  reason?: string;
}

/** `/watch`: live now, featured, trending, recommended, continue watching, library, upgrade. */
export function WatchPortal() {
  useDocumentTitle('Watch');
  const { me } = useSession();
  const [live, setLive] = useState<Item[] | null>(null);
  const [featured, setFeatured] = useState<Item[]>([]);
  const [trending, setTrending] = useState<Item[]>([]);
  const [recommended, setRecommended] = useState<Item[]>([]);
  const [continuing, setContinuing] = useState<Item[]>([]);
  const [library, setLibrary] = useState<Item[]>([]);
  const [group, setGroup] = useState<string | null>(null);
  const [query, setQuery] = useState('');
  const [results, setResults] = useState<Item[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const fail = (e: unknown) => setError(e instanceof Error ? e.message : String(e));
    watchApi.live().then((l) => setLive(l.items.map((stream) => ({ stream }))), fail);
    watchApi.featured().then((l) => setFeatured(l.items.map((stream) => ({ stream }))), fail);
    watchApi.trending().then((l) => setTrending(l.items.map((t) => ({ stream: t }))), fail);
    if (!me) return;
    watchApi.recommendations().then((l) => setRecommended(l.items), () => {});
    watchApi.continueWatching().then((l) => setContinuing(l.items.map((i) => ({ stream: i.stream }))), () => {});
    watchApi.saved().then((l) => setLibrary(l.items.map((i) => ({ stream: i.stream }))), () => {});
    watchApi.me().then((m) => setGroup(m.group), () => {});
  }, [me]);

  const search = (e: FormEvent) => {
    e.preventDefault();
    if (!query.trim()) {
      setResults(null);
      return;
    }
    watchApi.search(query).then(
      (r) => setResults(r.items.map((stream) => ({ stream }))),
      (err: unknown) => setError(err instanceof Error ? err.message : String(err)),
    );
  };

  return (
    <div className="watch">
      <PageHeader
        title="Watch"
        lead="Live channels and what is coming up."
        actions={
          me ? (
            <>
              <Link to="/watch/profile" className="button button-secondary">
                Profile &amp; settings
              </Link>
              {me.permissions.includes('catalog_manage') && (
                <Link to="/watch/admin" className="button button-secondary">
                  Viewer admin
                </Link>
              )}
            </>
          ) : (
            <Link to="/login?next=/watch" className="button button-primary">
              Sign in
            </Link>
          )
        }
      />
      <form className="watch-search" role="search" onSubmit={search}>
        <label htmlFor="watch-q" className="visually-hidden">
          Search streams
        </label>
        <input id="watch-q" type="search" placeholder="Search streams" value={query} onChange={(e) => setQuery(e.target.value)} />
        <button type="submit" className="button button-secondary">
          Search
        </button>
      </form>
      {error && <p className="notice notice-error">{error}</p>}
      {results && (
        <section className="section" aria-labelledby="w-results">
          <h2 id="w-results">Results</h2>
          <StreamGrid streams={results} empty="Nothing matches." />
        </section>
      )}
      {(group === null || group === 'free') && (
        <aside className="notice notice-info watch-upgrade">
          Premium and VIP streams need a subscription.{' '}
          <Link to={me ? '/watch/upgrade' : '/login?next=/watch/upgrade'}>See the plans</Link>
        </aside>
      )}
      <section className="section" aria-labelledby="w-live">
        <h2 id="w-live">Live now</h2>
        {live === null ? <p className="muted">Loading…</p> : <StreamGrid streams={live} empty="Nothing is live right now." />}
      </section>
      {featured.length > 0 && (
        <section className="section" aria-labelledby="w-featured">
          <h2 id="w-featured">Featured</h2>
          <StreamGrid streams={featured} empty="" />
        </section>
      )}
      {me && (
        <>
          <section className="section" aria-labelledby="w-recommended">
            <h2 id="w-recommended">Recommended for you</h2>
            <StreamGrid streams={recommended} empty="Watch or follow something and recommendations appear here." />
          </section>
          {continuing.length > 0 && (
            <section className="section" aria-labelledby="w-continue">
              <h2 id="w-continue">Continue watching</h2>
              <StreamGrid streams={continuing} empty="" />
            </section>
          )}
          <section className="section" aria-labelledby="w-library">
            <h2 id="w-library">Your library</h2>
            <StreamGrid streams={library} empty="Save streams from the player to find them here." />
          </section>
        </>
      )}
      {trending.length > 0 && (
        <section className="section" aria-labelledby="w-trending">
          <h2 id="w-trending">Trending</h2>
          <StreamGrid streams={trending} empty="" />
        </section>
      )}
    </div>
  );
}
