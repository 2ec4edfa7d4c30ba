import { useId, useRef, useState, type FormEvent } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { ApiError, login } from '../api/client';
import type { LoginRequest } from '../api/types';
import { homeFor, useSession } from '../auth/session';
import { LogoMark } from '../components/Icons';
import { useDocumentTitle } from '../useDocumentTitle';

type Field = 'email' | 'password' | 'totp';

/** Only same-origin paths, so `?next=` cannot send anyone to another site. */
function safeNext(next: string | null): string | null {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return null;
  if (next.startsWith('/login')) return null;
  return next;
}

const REASONS: Record<string, string> = {
  expired: 'Your session ended. Sign in again to continue where you were.',
  signed_out: 'You are signed out.',
};

function messageFor(err: unknown): string {
  if (!(err instanceof ApiError)) return 'Something went wrong while signing in. Please try again.';
  const { status, problem } = err;
  if (status === 0) return err.message;
  if (status === 404 || status === 405 || status === 501) {
    return 'Sign-in is not available yet on this server.';
  }
  if (problem.detail) return problem.detail;
  if (status === 401) return 'The email or password is not correct.';
  if (status === 429) return 'Too many attempts. Wait a moment and try again.';
  if (status >= 500) return `The server could not sign you in right now (HTTP ${status}). Try again shortly.`;
  return problem.title ?? err.message;
}

export function Login() {
  useDocumentTitle('Sign in');
  const navigate = useNavigate();
  const session = useSession();
  const [params] = useSearchParams();
  const reason = REASONS[params.get('reason') ?? ''];
  const [useRecovery, setUseRecovery] = useState(false);
  const ids = { email: useId(), password: useId(), totp: useId(), error: useId(), totpHint: useId() };

  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [totp, setTotp] = useState('');
  const [showPassword, setShowPassword] = useState(false);
  const [needTotp, setNeedTotp] = useState(false);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [badField, setBadField] = useState<Field | null>(null);
  const totpRef = useRef<HTMLInputElement>(null);

  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    if (pending) return;
    setPending(true);
    setError(null);
    setBadField(null);

    const body: LoginRequest = { email: email.trim(), password };
    if (needTotp && totp) body.totp = totp;

    try {
      const pair = await login(body);
      const me = await session.reload();
      const next = safeNext(params.get('next'));
      if (pair.next_step === 'mfa_enrolment') navigate('/account/security', { replace: true });
      else navigate(next ?? homeFor(me), { replace: true });
    } catch (err) {
      if (err instanceof ApiError && err.code === 'mfa_required') {
        // The password was right; the account also needs a code from its authenticator app.
        setNeedTotp(true);
        if (needTotp) {
          setError(err.problem.detail ?? 'Enter the 6-digit code from your authenticator app.');
          setBadField('totp');
        }
        // Focus after React has rendered the field.
        requestAnimationFrame(() => totpRef.current?.focus());
      } else {
        setError(messageFor(err));
        const field = err instanceof ApiError ? err.problem.field : undefined;
        if (field === 'email' || field === 'password' || field === 'totp') setBadField(field);
      }
    } finally {
      setPending(false);
    }
  }

  const describedBy = (field: Field) => (error && badField === field ? ids.error : undefined);

  return (
    <div className="auth-page">
      <main className="auth-card" id="main">
        <Link to="/" className="brand auth-brand" aria-label="Lunora home">
          <LogoMark size={36} />
          <span className="brand-name">Lunora</span>
        </Link>
        <h1>Sign in</h1>
        <p className="muted auth-intro">Use the account your Lunora administrator gave you.</p>

        {reason && !error && (
          <div className="notice notice-info" role="status">
            {reason}
          </div>
        )}
        {error && (
          <div className="notice notice-error" role="alert" id={ids.error}>
            {error}
          </div>
        )}

        <form className="form" onSubmit={onSubmit} aria-busy={pending}>
          <div className="field">
            <label htmlFor={ids.email}>Email</label>
            <input
              id={ids.email}
              name="email"
              type="email"
              autoComplete="username"
              inputMode="email"
              required
              autoFocus
              value={email}
              onChange={(e) => setEmail(e.target.value)}
              aria-invalid={badField === 'email' || undefined}
              aria-describedby={describedBy('email')}
            />
          </div>

          <div className="field">
            <label htmlFor={ids.password}>Password</label>
            <div className="input-with-action">
              <input
                id={ids.password}
                name="password"
                type={showPassword ? 'text' : 'password'}
                autoComplete="current-password"
                required
                value={password}
                onChange={(e) => setPassword(e.target.value)}
                aria-invalid={badField === 'password' || undefined}
                aria-describedby={describedBy('password')}
              />
              <button
                type="button"
                className="input-action"
                onClick={() => setShowPassword((v) => !v)}
                aria-pressed={showPassword}
                aria-controls={ids.password}
              >
                {showPassword ? 'Hide' : 'Show'}
              </button>
            </div>
          </div>

          {needTotp && (
            <div className="field">
              <label htmlFor={ids.totp}>{useRecovery ? 'Recovery code' : 'Authentication code'}</label>
              <input
                ref={totpRef}
                id={ids.totp}
                name="totp"
                className={useRecovery ? 'mono' : 'totp'}
                type="text"
                inputMode={useRecovery ? 'text' : 'numeric'}
                autoComplete="one-time-code"
                maxLength={useRecovery ? 64 : 6}
                required
                placeholder={useRecovery ? 'xxxx-xxxx' : '123456'}
                value={totp}
                onChange={(e) =>
                  setTotp(useRecovery ? e.target.value.trim() : e.target.value.replace(/\D/g, '').slice(0, 6))
                }
                aria-invalid={badField === 'totp' || undefined}
                aria-describedby={[ids.totpHint, describedBy('totp')].filter(Boolean).join(' ')}
              />
              <p className="hint" id={ids.totpHint}>
                {useRecovery
                  ? 'Enter one of the recovery codes you saved when you turned on two-step verification.'
                  : 'Two-step verification is on for this account. Enter the 6-digit code from your authenticator app.'}{' '}
                <button
                  type="button"
                  className="link-button"
                  onClick={() => {
                    setUseRecovery((v) => !v);
                    setTotp('');
                    requestAnimationFrame(() => totpRef.current?.focus());
                  }}
                >
                  {useRecovery ? 'Use the app instead' : 'Use a recovery code'}
                </button>
              </p>
            </div>
          )}

          <button type="submit" className="button button-primary button-block" disabled={pending}>
            {pending ? 'Signing in…' : 'Sign in'}
          </button>
        </form>

        <p className="auth-foot muted small">
          <Link to="/reset-password">Forgot your password?</Link> · <Link to="/">Back to home</Link>
        </p>
      </main>
    </div>
  );
}
