import { useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { Link, useSearchParams } from 'react-router';
import { request } from '../../api/client';
import { Field, useFieldErrors } from '../../components/Form';
import { LogoMark } from '../../components/Icons';
import { errorText } from '../../components/Toasts';
import { useDocumentTitle } from '../../useDocumentTitle';

/** The centred card every sign-in page uses. */
export function AuthCard({ title, intro, children }: { title: string; intro?: ReactNode; children: ReactNode }) {
  return (
    <div className="auth-page">
      <main className="auth-card" id="main">
        <Link to="/" className="brand auth-brand" aria-label="Lunora home">
          <LogoMark size={36} />
          <span className="brand-name">Lunora</span>
        </Link>
        <h1>{title}</h1>
        {intro && <p className="muted auth-intro">{intro}</p>}
        {children}
      </main>
    </div>
  );
}

function PasswordInput(props: Record<string, unknown> & { value: string; onChange: (v: string) => void; autoComplete: string }) {
  const [show, setShow] = useState(false);
  const { value, onChange, ...rest } = props;
  return (
    <div className="input-with-action">
      <input {...rest} type={show ? 'text' : 'password'} value={value} onChange={(e) => onChange(e.target.value)} />
      <button type="button" className="input-action" onClick={() => setShow((v) => !v)} aria-pressed={show}>
        {show ? 'Hide' : 'Show'}
      </button>
    </div>
  );
}

const STAFF_RULE = '12+ characters with upper and lower case, a digit and a special character.';

export function AcceptInvitationPage() {
  useDocumentTitle('Accept invitation');
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [done, setDone] = useState(false);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const { errors, clear, setErrors } = useFieldErrors(['password', 'display_name', 'token'] as const);

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    setPending(true);
    setError(null);
    clear();
    try {
      const body: { token: string; password: string; display_name?: string } = { token, password };
      if (name.trim()) body.display_name = name.trim();
      await request('/api/v1/invitations/accept', { method: 'POST', body, noRefresh: true });
      setDone(true);
    } catch (err) {
      const field = (err as { field?: string }).field;
      if (field === 'password' || field === 'display_name') setErrors({ [field]: errorText(err) });
      else setError(errorText(err));
    } finally {
      setPending(false);
    }
  }

  if (!token) {
    return (
      <AuthCard title="Invitation link incomplete">
        <p className="notice notice-error">This link has no token. Open the link from your invitation e-mail again.</p>
      </AuthCard>
    );
  }
  if (done) {
    return (
      <AuthCard title="Welcome to Lunora">
        <p className="notice notice-ok" role="status">
          Your account is ready. Sign in with your e-mail address and the password you chose.
        </p>
        <Link to="/login" className="button button-primary button-block">
          Sign in
        </Link>
      </AuthCard>
    );
  }
  return (
    <AuthCard title="Accept your invitation" intro="Choose your name and a password to finish setting up your account.">
      {error && (
        <div className="notice notice-error" role="alert">
          {error}
        </div>
      )}
      <form className="form" onSubmit={onSubmit} noValidate>
        <Field label="Your name" error={errors.display_name}>
          {(p) => <input {...p} autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="Password" error={errors.password} hint={STAFF_RULE}>
          {(p) => <PasswordInput {...p} autoComplete="new-password" value={password} onChange={(v) => (setPassword(v), clear('password'))} />}
        </Field>
        <button type="submit" className="button button-primary button-block" disabled={pending}>
          {pending ? 'Creating your account…' : 'Create account'}
        </button>
      </form>
    </AuthCard>
  );
}

export function ResetPasswordPage() {
  useDocumentTitle('Reset password');
  const [params] = useSearchParams();
  const token = params.get('token');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [state, setState] = useState<'form' | 'sent' | 'done'>('form');
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const { errors, clear, setErrors } = useFieldErrors(['password', 'email'] as const);

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    setPending(true);
    setError(null);
    clear();
    try {
      if (token) {
        await request('/api/v1/auth/password-reset/confirm', { method: 'POST', body: { token, password }, noRefresh: true });
        setState('done');
      } else {
        await request('/api/v1/auth/password-reset/request', { method: 'POST', body: { email: email.trim() }, noRefresh: true });
        setState('sent');
      }
    } catch (err) {
      const field = (err as { field?: string }).field;
      if (field === 'password' || field === 'email') setErrors({ [field]: errorText(err) });
      else setError(errorText(err));
    } finally {
      setPending(false);
    }
  }

  if (state === 'sent') {
    return (
      <AuthCard title="Check your e-mail">
        <p className="notice notice-ok" role="status">
          If {email} has an account, a link to choose a new password is on its way. It works once and expires soon.
        </p>
        <Link to="/login">Back to sign in</Link>
      </AuthCard>
    );
  }
  if (state === 'done') {
    return (
      <AuthCard title="Password changed">
        <p className="notice notice-ok" role="status">
          Your new password is set and every other session was signed out.
        </p>
        <Link to="/login" className="button button-primary button-block">
          Sign in
        </Link>
      </AuthCard>
    );
  }
  return (
    <AuthCard
      title={token ? 'Choose a new password' : 'Reset your password'}
      intro={token ? undefined : 'Enter your e-mail address and we will send you a link to choose a new password.'}
    >
      {error && (
        <div className="notice notice-error" role="alert">
          {error}
        </div>
      )}
      <form className="form" onSubmit={onSubmit} noValidate>
        {token ? (
          <Field label="New password" error={errors.password} hint={STAFF_RULE}>
            {(p) => <PasswordInput {...p} autoComplete="new-password" value={password} onChange={(v) => (setPassword(v), clear('password'))} />}
          </Field>
        ) : (
          <Field label="Email" error={errors.email}>
            {(p) => <input {...p} type="email" autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} />}
          </Field>
        )}
        <button type="submit" className="button button-primary button-block" disabled={pending}>
          {pending ? 'Please wait…' : token ? 'Set new password' : 'Send reset link'}
        </button>
      </form>
      <p className="auth-foot muted small">
        <Link to="/login">Back to sign in</Link>
      </p>
    </AuthCard>
  );
}

export function VerifyEmailPage() {
  useDocumentTitle('Confirm e-mail');
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const [state, setState] = useState<'checking' | 'ok' | string>('checking');
  const once = useRef(false);
  useEffect(() => {
    if (once.current) return;
    once.current = true;
    if (!token) {
      setState('This link has no token. Open the link from the e-mail again.');
      return;
    }
    request('/api/v1/auth/verify-email', { method: 'POST', body: { token }, noRefresh: true })
      .then(() => setState('ok'))
      .catch((err) => setState(errorText(err)));
  }, [token]);
  return (
    <AuthCard title="Confirm your e-mail">
      {state === 'checking' ? (
        <p className="muted">Confirming…</p>
      ) : state === 'ok' ? (
        <>
          <p className="notice notice-ok" role="status">
            Your address is confirmed. You can sign in now.
          </p>
          <Link to="/login" className="button button-primary button-block">
            Sign in
          </Link>
        </>
      ) : (
        <p className="notice notice-error" role="alert">
          {state}
        </p>
      )}
    </AuthCard>
  );
}
