import { useEffect, useState } from 'react';
import { Link } from 'react-router';
import { PageHeader, Tabs } from '../../components/ui';
import { useDocumentTitle } from '../../useDocumentTitle';
import {
  watchApi,
  type AccountList,
  type AdminAnalytics,
  type AdminSubscriptionList,
  type CategoryList,
  type Stream,
} from './api';

type Tab = 'catalog' | 'categories' | 'accounts' | 'subscriptions' | 'analytics';

/** `/watch/admin`: catalog editing (featured included), categories, accounts, subscriptions, analytics. */
export function WatchAdminPage() {
  useDocumentTitle('Viewer admin');
  const [tab, setTab] = useState<Tab>('catalog');
  const [error, setError] = useState<string | null>(null);
  const fail = (e: unknown) => setError(e instanceof Error ? e.message : String(e));
  return (
    <div className="watch-admin">
      <PageHeader title="Viewer admin" actions={<Link to="/watch">Back to the portal</Link>} />
      {error && <p className="notice notice-error">{error}</p>}
      <Tabs<Tab>
        label="Viewer admin"
        tabs={[
          { id: 'catalog', label: 'Catalog' },
          { id: 'categories', label: 'Categories' },
          { id: 'accounts', label: 'Accounts' },
          { id: 'subscriptions', label: 'Subscriptions' },
          { id: 'analytics', label: 'Analytics' },
        ]}
        value={tab}
        onChange={setTab}
      />
      {tab === 'catalog' && <Catalog fail={fail} />}
      {tab === 'categories' && <Categories fail={fail} />}
      {tab === 'accounts' && <Accounts fail={fail} />}
      {tab === 'subscriptions' && <Subscriptions fail={fail} />}
      {tab === 'analytics' && <Analytics fail={fail} />}
    </div>
  );
}

type Fail = { fail: (e: unknown) => void };

function Catalog({ fail }: Fail) {
  const [items, setItems] = useState<Stream[]>([]);
  const [cats, setCats] = useState<CategoryList | null>(null);
  const load = () => watchApi.adminCatalog().then((l) => setItems(l.items), fail);
  useEffect(() => {
    void load();
    watchApi.categories().then(setCats, fail);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  const save = (id: string, body: Parameters<typeof watchApi.updateStream>[1]) =>
    watchApi.updateStream(id, body).then(load, fail);
  return (
    <div className="table-wrap">
      <table className="table">
        <thead>
          <tr>
            <th>Title</th>
            <th>Category</th>
            <th>Tags</th>
            <th>Access</th>
            <th>Rating</th>
            <th>Featured</th>
            <th>Visibility</th>
          </tr>
        </thead>
        <tbody>
          {items.map((s) => (
            <tr key={s.id}>
              <td>
                <input aria-label="Title" defaultValue={s.title} onBlur={(e) => e.target.value !== s.title && save(s.id, { title: e.target.value })} />
              </td>
              <td>
                <select aria-label="Category" value={s.category?.id ?? ''} onChange={(e) => save(s.id, { category_id: e.target.value })}>
                  <option value="">None</option>
                  {cats?.items.map((c) => (
                    <option key={c.id} value={c.id}>
                      {c.name}
                    </option>
                  ))}
                </select>
              </td>
              <td>
                <input
                  aria-label="Tags"
                  defaultValue={s.tags.join(', ')}
                  onBlur={(e) =>
                    save(s.id, {
                      tags: e.target.value
                        .split(',')
                        .map((t) => t.trim())
                        .filter(Boolean),
                    })
                  }
                />
              </td>
              <td>
                <select aria-label="Access level" value={s.access_level} onChange={(e) => save(s.id, { access_level: e.target.value })}>
                  <option>public</option>
                  <option>premium</option>
                  <option>vip</option>
                </select>
              </td>
              <td>
                <select aria-label="Rating" value={s.content_rating} onChange={(e) => save(s.id, { content_rating: e.target.value })}>
                  <option>general</option>
                  <option>teen</option>
                  <option>mature</option>
                  <option>adult</option>
                </select>
              </td>
              <td>
                <input type="checkbox" aria-label="Featured" checked={s.featured} onChange={(e) => save(s.id, { featured: e.target.checked })} />
              </td>
              <td>{s.visibility}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Categories({ fail }: Fail) {
  const [cats, setCats] = useState<CategoryList | null>(null);
  const [name, setName] = useState('');
  const load = () => watchApi.categories().then(setCats, fail);
  useEffect(() => {
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return (
    <div>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          watchApi.createCategory(name).then(() => {
            setName('');
            void load();
          }, fail);
        }}
      >
        <label htmlFor="cat-name">New category</label>
        <input id="cat-name" value={name} onChange={(e) => setName(e.target.value)} required />
        <button type="submit" className="button button-primary">
          Add
        </button>
      </form>
      <ul>
        {cats?.items.map((c) => (
          <li key={c.id}>
            {c.name} ({c.stream_count} streams, {c.live_count} live){' '}
            <button type="button" className="link-button" onClick={() => watchApi.deleteCategory(c.id).then(load, fail)}>
              Delete
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}

function Accounts({ fail }: Fail) {
  const [list, setList] = useState<AccountList | null>(null);
  useEffect(() => {
    watchApi.accounts().then(setList, fail);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return (
    <table className="table">
      <thead>
        <tr>
          <th>Email</th>
          <th>Name</th>
          <th>Group</th>
          <th>Verified</th>
          <th>Joined</th>
        </tr>
      </thead>
      <tbody>
        {list?.items.map((a) => (
          <tr key={a.id}>
            <td>{a.email}</td>
            <td>{a.display_name}</td>
            <td>{a.group}</td>
            <td>{a.email_verified ? 'yes' : 'no'}</td>
            <td>{new Date(a.created_at).toLocaleDateString()}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Subscriptions({ fail }: Fail) {
  const [list, setList] = useState<AdminSubscriptionList | null>(null);
  useEffect(() => {
    watchApi.subscriptions().then(setList, fail);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return (
    <table className="table">
      <thead>
        <tr>
          <th>Email</th>
          <th>Plan</th>
          <th>Status</th>
          <th>Period end</th>
          <th>Payment</th>
        </tr>
      </thead>
      <tbody>
        {list?.items.map((s) => (
          <tr key={s.id}>
            <td>{s.email}</td>
            <td>{s.plan}</td>
            <td>{s.status}</td>
            <td>{new Date(s.current_period_end).toLocaleDateString()}</td>
            <td>{s.payment_method}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Analytics({ fail }: Fail) {
  const [a, setA] = useState<AdminAnalytics | null>(null);
  useEffect(() => {
    watchApi.analytics().then(setA, fail);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  if (!a) return <p className="muted">Loading…</p>;
  return (
    <div>
      <p>
        {a.viewers_now} watching now · {Math.round(a.watch_seconds_24h / 60)} minutes watched over 24 h in {a.sessions_24h} sessions (
        {a.anonymous_sessions_24h} anonymous)
      </p>
      <table className="table">
        <thead>
          <tr>
            <th>Stream</th>
            <th>Minutes</th>
            <th>Sessions</th>
          </tr>
        </thead>
        <tbody>
          {a.top_streams.map((t) => (
            <tr key={t.stream_id}>
              <td>{t.title}</td>
              <td>{Math.round(t.watch_seconds / 60)}</td>
              <td>{t.sessions}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
