import { useEffect, useState, type FormEvent } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { useSession } from '../../auth/session';
import { PageHeader } from '../../components/ui';
import { useDocumentTitle } from '../../useDocumentTitle';
import { watchApi, type MySubscription, type PlanList } from './api';

function safeNext(next: string | null): string {
  return next && next.startsWith('/watch') && !next.startsWith('//') ? next : '/watch';
}

/** `/watch/upgrade`: plans and checkout through the server's payment provider. */
export function WatchUpgradePage() {
  useDocumentTitle('Upgrade');
  const { me } = useSession();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [plans, setPlans] = useState<PlanList | null>(null);
  const [mine, setMine] = useState<MySubscription | null>(null);
  const [plan, setPlan] = useState('premium');
  const [card, setCard] = useState('');
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const next = safeNext(params.get('next'));

  useEffect(() => {
    watchApi.plans().then(setPlans, () => {});
    if (me) watchApi.mySubscription().then(setMine, () => {});
  }, [me]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setPending(true);
    setError(null);
    watchApi.checkout(plan, card).then(
      () => navigate(next),
      (err: unknown) => {
        setPending(false);
        setError(err instanceof Error ? err.message : String(err));
      },
    );
  };

  if (!me) {
    return (
      <p>
        <Link to={`/login?next=${encodeURIComponent(`/watch/upgrade?next=${next}`)}`} className="button button-primary">
          Sign in to upgrade
        </Link>
      </p>
    );
  }
  return (
    <div className="watch-upgrade-page">
      <PageHeader title="Upgrade" lead={mine ? `Your plan: ${mine.group}` : undefined} />
      <form className="form card" onSubmit={submit} aria-label="Checkout">
        <fieldset className="fieldset">
          <legend>Plan</legend>
          {plans?.items
            .filter((p) => p.id !== 'free')
            .map((p) => (
              <label key={p.id} className="check">
                <input type="radio" name="plan" value={p.id} checked={plan === p.id} onChange={() => setPlan(p.id)} />{' '}
                <strong>{p.id}</strong> — ${(p.price_cents / 100).toFixed(2)} / {p.period_days} days: {p.unlocks}
              </label>
            ))}
        </fieldset>
        <div className="field">
          <label htmlFor="card">Card number</label>
          <input id="card" inputMode="numeric" autoComplete="cc-number" value={card} onChange={(e) => setCard(e.target.value)} required />
          {plans?.provider === 'test' && (
            <p className="hint">Test payments: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined.</p>
          )}
        </div>
        {error && (
          <p className="notice notice-error" role="alert">
            {error}
          </p>
        )}
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={pending}>
            {pending ? 'Paying…' : 'Subscribe'}
          </button>
        </div>
      </form>
    </div>
  );
}
