import { useEffect, useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router';
import { useSession } from '../../auth/session';
import { PageHeader } from '../../components/ui';
import { useDocumentTitle } from '../../useDocumentTitle';
import { watchApi, type MySubscription, type PersonList, type ViewerMe, type ViewerStats } from './api';

const RATINGS = ['general', 'teen', 'mature', 'adult'];

/** `/watch/profile`: profile, preferences, privacy, parental controls, subscription, data. */
export function WatchProfilePage() {
  useDocumentTitle('Profile & settings');
  const { me: session, signOut } = useSession();
  const navigate = useNavigate();
  const [me, setMe] = useState<ViewerMe | null>(null);
  const [sub, setSub] = useState<MySubscription | null>(null);
  const [stats, setStats] = useState<ViewerStats | null>(null);
  const [follows, setFollows] = useState<PersonList | null>(null);
  const [blocked, setBlocked] = useState<PersonList | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [rating, setRating] = useState('adult');
  const [pin, setPin] = useState('');
  const [currentPin, setCurrentPin] = useState('');
  const [password, setPassword] = useState('');

  const fail = (e: unknown) => setError(e instanceof Error ? e.message : String(e));
  const load = () => {
    watchApi.me().then((m) => {
      setMe(m);
      setRating(m.parental.max_rating);
    }, fail);
    watchApi.mySubscription().then(setSub, () => {});
    watchApi.stats().then(setStats, () => {});
    watchApi.follows().then(setFollows, () => {});
    watchApi.blocked().then(setBlocked, () => {});
  };
  useEffect(load, []);

  if (!session) {
    return (
      <Link to="/login?next=/watch/profile" className="button button-primary">
        Sign in
      </Link>
    );
  }
  if (!me) return <p className="muted">{error ?? 'Loading…'}</p>;

  const saveProfile = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    watchApi
      .updateMe({
        display_name: String(f.get('display_name') ?? ''),
        profile_visibility: String(f.get('visibility') ?? 'public'),
        history_enabled: f.get('history') === 'on',
        preferences: {
          quality: String(f.get('quality') ?? 'auto'),
          language: String(f.get('language') ?? 'en') || 'en',
          autoplay: f.get('autoplay') === 'on',
          notifications: f.get('notifications') === 'on',
        },
      })
      .then((m) => {
        setMe(m);
        setNote('Saved.');
      }, fail);
  };

  const saveParental = (e: FormEvent) => {
    e.preventDefault();
    watchApi
      .setParental({ max_rating: rating, ...(pin ? { pin } : {}), ...(currentPin ? { current_pin: currentPin } : {}) })
      .then((m) => {
        setMe(m);
        setPin('');
        setCurrentPin('');
        setNote('Parental controls saved.');
      }, fail);
  };

  const exportData = () => {
    fetch('/api/v1/viewer/me/export', { credentials: 'same-origin' })
      .then((r) => r.blob())
      .then((b) => {
        const a = document.createElement('a');
        a.href = URL.createObjectURL(b);
        a.download = 'lunora-viewer-data.json';
        a.click();
      }, fail);
  };

  const deleteAccount = (e: FormEvent) => {
    e.preventDefault();
    watchApi.deleteMe(password).then(async () => {
      await signOut().catch(() => {});
      navigate('/');
    }, fail);
  };

  const prefs = me.preferences;
  return (
    <div className="watch-profile">
      <PageHeader title="Profile & settings" lead={`${me.email} · ${me.group}`} />
      {note && <p className="notice notice-ok">{note}</p>}
      {error && <p className="notice notice-error">{error}</p>}
      <form className="form card" onSubmit={saveProfile} aria-label="Profile">
        <h2 className="card-title">Profile, preferences and privacy</h2>
        <div className="field">
          <label htmlFor="display_name">Display name</label>
          <input id="display_name" name="display_name" defaultValue={me.display_name} />
        </div>
        <div className="field">
          <label htmlFor="quality">Quality</label>
          <select id="quality" name="quality" defaultValue={prefs.quality ?? 'auto'}>
            <option value="auto">Auto</option>
            <option value="source">Source</option>
            <option value="720p">720p</option>
            <option value="480p">480p</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor="language">Language</label>
          <input id="language" name="language" defaultValue={prefs.language ?? 'en'} />
        </div>
        <label className="check">
          <input type="checkbox" name="autoplay" defaultChecked={prefs.autoplay ?? true} /> Autoplay
        </label>
        <label className="check">
          <input type="checkbox" name="notifications" defaultChecked={prefs.notifications ?? true} /> Notify me when creators I follow go live
        </label>
        <div className="field">
          <label htmlFor="visibility">Profile visibility</label>
          <select id="visibility" name="visibility" defaultValue={me.profile_visibility}>
            <option value="public">Public</option>
            <option value="private">Private</option>
          </select>
        </div>
        <label className="check">
          <input type="checkbox" name="history" defaultChecked={me.history_enabled} /> Keep my viewing history
        </label>
        <div className="form-actions">
          <button type="submit" className="button button-primary">
            Save
          </button>
        </div>
      </form>

      <form className="form card" onSubmit={saveParental} aria-label="Parental controls">
        <h2 className="card-title">Parental controls</h2>
        <div className="field">
          <label htmlFor="rating">Highest rating shown without the PIN</label>
          <select id="rating" value={rating} onChange={(e) => setRating(e.target.value)}>
            {RATINGS.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </div>
        {me.parental.pin_set && (
          <div className="field">
            <label htmlFor="current_pin">Current PIN</label>
            <input id="current_pin" inputMode="numeric" value={currentPin} onChange={(e) => setCurrentPin(e.target.value)} />
          </div>
        )}
        <div className="field">
          <label htmlFor="new_pin">{me.parental.pin_set ? 'New PIN (optional)' : 'PIN (4–8 digits)'}</label>
          <input id="new_pin" inputMode="numeric" value={pin} onChange={(e) => setPin(e.target.value)} />
        </div>
        <div className="form-actions">
          <button type="submit" className="button button-primary">
            Save parental controls
          </button>
        </div>
      </form>

      <section className="card">
        <h2 className="card-title">Subscription</h2>
        {sub?.current ? (
          <p>
            {sub.current.plan} · {sub.current.status} · until {new Date(sub.current.current_period_end).toLocaleDateString()} ·{' '}
            {sub.current.payment_method}{' '}
            {sub.current.status === 'active' && (
              <button type="button" className="button button-secondary button-small" onClick={() => watchApi.cancel().then(setSub, fail)}>
                Cancel renewal
              </button>
            )}
          </p>
        ) : (
          <p>
            Free plan. <Link to="/watch/upgrade">Upgrade</Link>
          </p>
        )}
      </section>

      {stats && (
        <section className="card">
          <h2 className="card-title">Your viewing</h2>
          <p>
            {Math.round(stats.total_watch_seconds / 60)} minutes over {stats.sessions} sessions of {stats.streams_watched} streams.
            {stats.favorite_categories.length > 0 && ` Favourite: ${stats.favorite_categories.join(', ')}.`}
          </p>
        </section>
      )}

      <section className="card">
        <h2 className="card-title">Following and blocked</h2>
        <ul>
          {follows?.items.map((f) => (
            <li key={f.user_id}>
              {f.display_name}{' '}
              <button type="button" className="link-button" onClick={() => watchApi.unfollow(f.user_id).then(load, fail)}>
                Unfollow
              </button>
            </li>
          ))}
          {blocked?.items.map((b) => (
            <li key={b.user_id}>
              Blocked: {b.display_name}{' '}
              <button type="button" className="link-button" onClick={() => watchApi.unblock(b.user_id).then(load, fail)}>
                Unblock
              </button>
            </li>
          ))}
        </ul>
      </section>

      <section className="card">
        <h2 className="card-title">Your data</h2>
        <p>
          <button type="button" className="button button-secondary" onClick={exportData}>
            Export my data (JSON)
          </button>{' '}
          <button type="button" className="button button-secondary" onClick={() => watchApi.clearHistory().then(load, fail)}>
            Clear viewing history
          </button>
        </p>
        <form onSubmit={deleteAccount} aria-label="Delete account">
          <p className="small">Deleting the account removes your profile, history, library, follows and subscriptions for good.</p>
          <label htmlFor="del_pw">Password</label>{' '}
          <input id="del_pw" type="password" value={password} onChange={(e) => setPassword(e.target.value)} required />{' '}
          <button type="submit" className="button button-danger">
            Delete my account
          </button>
        </form>
      </section>
    </div>
  );
}
