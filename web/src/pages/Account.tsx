import { useCallback, useEffect, useMemo, useState, type FormEvent } from 'react';
import { useNavigate } from 'react-router';
import { encode } from 'uqr';
import { request } from '../api/client';
import { enrolTotp, getMfa, verifyTotp } from '../api/endpoints';
import type { MfaEnrolment, MfaStatus } from '../api/types';
import { Loading } from '../auth/RequireAuth';
import { homeFor, useSession } from '../auth/session';
import { Field, useFieldErrors } from '../components/Form';
import { Icon } from '../components/Icons';
import { useToast } from '../components/Toasts';
import { CopyButton, CopyField, PageHeader } from '../components/ui';
import { formatAgo, humanize } from '../lib/format';
import { useDocumentTitle } from '../useDocumentTitle';

interface SessionRow {
  id: string;
  created_at: number;
  last_seen_at: number;
  ip: string;
  user_agent: string;
  current: boolean;
}

function browserName(ua: string): string {
  if (!ua) return 'Unknown client';
  const m = ua.match(/(Firefox|Edg|Chrome|Chromium|Safari|curl|reqwest)[/ ]?([\d.]*)/);
  const os = ua.match(/\((?:[^;)]*; )?([^;)]+)/)?.[1];
  const name = m ? (m[1] === 'Edg' ? 'Edge' : m[1]) : ua.slice(0, 40);
  return os ? `${name} on ${os}` : (name ?? ua);
}

export function ProfilePage() {
  useDocumentTitle('Your account');
  const { me } = useSession();
  const toast = useToast();
  const [sessions, setSessions] = useState<SessionRow[] | null>(null);

  const load = useCallback(async () => {
    try {
      const r = await request<{ items?: SessionRow[] } | SessionRow[]>('/api/v1/auth/sessions');
      setSessions(Array.isArray(r) ? r : (r.items ?? []));
    } catch (err) {
      toast.error(err, 'Sessions could not be loaded');
      setSessions([]);
    }
  }, [toast]);

  useEffect(() => {
    if (me?.permissions.includes('self_manage')) void load();
  }, [load, me]);

  if (!me) return <Loading />;
  return (
    <>
      <PageHeader title="Your account" lead="Who you are signed in as and what your role may do." />
      <div className="two-col">
        <section className="card" aria-labelledby="profile-heading">
          <h2 id="profile-heading" className="card-title">
            Profile
          </h2>
          <dl className="kv">
            <dt>Name</dt>
            <dd>{me.display_name || '—'}</dd>
            <dt>Email</dt>
            <dd>{me.email}</dd>
            <dt>Role</dt>
            <dd>{humanize(me.role)}</dd>
            <dt>Two-step verification</dt>
            <dd>{me.mfa_enabled ? <span className="ok-text">On</span> : 'Off'}</dd>
          </dl>
        </section>
        <section className="card" aria-labelledby="perm-heading">
          <h2 id="perm-heading" className="card-title">
            What you may do
          </h2>
          <ul className="tags">
            {me.permissions.map((p) => (
              <li key={p}>{humanize(p)}</li>
            ))}
          </ul>
        </section>
      </div>
      {sessions && (
        <section className="section" aria-labelledby="sess-heading">
          <h2 id="sess-heading" className="section-title">
            Signed-in sessions
          </h2>
          <ul className="session-list card">
            {sessions.map((s) => (
              <li key={s.id}>
                <div className="grow">
                  <strong>{browserName(s.user_agent)}</strong>
                  {s.current && <span className="badge badge-ok small-badge">This browser</span>}
                  <span className="muted small block">
                    {s.ip} · last active {formatAgo(new Date(s.last_seen_at).toISOString())}
                  </span>
                </div>
                {!s.current && (
                  <button
                    type="button"
                    className="button button-ghost button-small danger-text"
                    onClick={async () => {
                      try {
                        await request(`/api/v1/auth/sessions/${encodeURIComponent(s.id)}`, { method: 'DELETE' });
                        setSessions((all) => (all ?? []).filter((x) => x.id !== s.id));
                        toast.success('Session signed out');
                      } catch (err) {
                        toast.error(err);
                      }
                    }}
                  >
                    Sign out
                  </button>
                )}
              </li>
            ))}
          </ul>
        </section>
      )}
    </>
  );
}

/** A QR code as an SVG drawn from the encoded matrix (no HTML injection). */
export function QrCode({ text, label }: { text: string; label: string }) {
  const path = useMemo(() => {
    const qr = encode(text, { ecc: 'M', border: 2 });
    let d = '';
    qr.data.forEach((row, y) =>
      row.forEach((on, x) => {
        if (on) d += `M${x} ${y}h1v1h-1z`;
      }),
    );
    return { d, size: qr.size };
  }, [text]);
  return (
    <svg className="qr" viewBox={`0 0 ${path.size} ${path.size}`} role="img" aria-label={label} shapeRendering="crispEdges">
      <rect width={path.size} height={path.size} fill="#fff" />
      <path d={path.d} fill="#000" />
    </svg>
  );
}

function Enrol({ onDone }: { onDone: (codes: string[]) => void }) {
  const [enrolment, setEnrolment] = useState<MfaEnrolment | null>(null);
  const [code, setCode] = useState('');
  const [pending, setPending] = useState(false);
  const toast = useToast();
  const { errors, clear, report } = useFieldErrors(['code'] as const);

  async function start() {
    setPending(true);
    try {
      setEnrolment(await enrolTotp());
    } catch (err) {
      toast.error(err, 'Enrolment could not start');
    } finally {
      setPending(false);
    }
  }

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    setPending(true);
    clear();
    try {
      const r = await verifyTotp(code);
      onDone(r.recovery_codes);
    } catch (err) {
      report(err, 'The code was not accepted');
    } finally {
      setPending(false);
    }
  }

  if (!enrolment) {
    return (
      <button type="button" className="button button-primary" onClick={start} disabled={pending}>
        <Icon name="lock" /> {pending ? 'Starting…' : 'Set up an authenticator app'}
      </button>
    );
  }
  return (
    <div className="enrol">
      <ol className="steps">
        <li>Open an authenticator app (Google Authenticator, 1Password, Aegis, …) and add an account.</li>
        <li>Scan the code, or type the secret key by hand.</li>
        <li>Enter the 6-digit code the app shows.</li>
      </ol>
      <div className="enrol-grid">
        <QrCode text={enrolment.otpauth_uri} label="QR code for your authenticator app" />
        <div>
          <CopyField label="Secret key" value={enrolment.secret} testId="totp-secret" />
          <form className="form" onSubmit={onSubmit} noValidate>
            <Field label="Code from the app" error={errors.code}>
              {(p) => (
                <input
                  {...p}
                  className="totp"
                  inputMode="numeric"
                  autoComplete="one-time-code"
                  maxLength={6}
                  placeholder="123456"
                  value={code}
                  onChange={(e) => {
                    setCode(e.target.value.replace(/\D/g, '').slice(0, 6));
                    clear('code');
                  }}
                />
              )}
            </Field>
            <button type="submit" className="button button-primary" disabled={pending || code.length !== 6}>
              {pending ? 'Checking…' : 'Turn on two-step verification'}
            </button>
          </form>
        </div>
      </div>
    </div>
  );
}

export function SecurityPage() {
  useDocumentTitle('Security');
  const { me, reload } = useSession();
  const navigate = useNavigate();
  const toast = useToast();
  const [mfa, setMfa] = useState<MfaStatus | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);

  useEffect(() => {
    const ctrl = new AbortController();
    getMfa(ctrl.signal)
      .then(setMfa)
      .catch((err) => {
        if (!ctrl.signal.aborted) toast.error(err, 'MFA status could not be loaded');
      });
    return () => ctrl.abort();
  }, [toast]);

  const mustEnrol = me?.next_step === 'mfa_enrolment';

  return (
    <>
      <PageHeader
        title="Security"
        lead="Two-step verification asks for a code from your phone at sign-in, so a stolen password is not enough."
      />
      {mustEnrol && !codes && (
        <p className="notice notice-warn" role="status">
          Your organization requires two-step verification. Set it up to continue.
        </p>
      )}
      <section className="card" aria-labelledby="mfa-heading">
        <div className="card-head">
          <h2 id="mfa-heading">Authenticator app (TOTP)</h2>
          {mfa && (
            <span className={`badge ${mfa.totp_enabled ? 'badge-ok' : 'badge-neutral'}`} data-testid="mfa-state">
              <span className="badge-dot" aria-hidden="true" />
              {mfa.totp_enabled ? 'On' : 'Off'}
            </span>
          )}
        </div>
        {!mfa ? (
          <Loading />
        ) : codes ? (
          <div className="recovery">
            <p className="notice notice-ok" role="status">
              Two-step verification is on. Keep these recovery codes somewhere safe: each works once if you lose your
              phone. They are shown only now.
            </p>
            <ul className="recovery-codes mono" data-testid="recovery-codes">
              {codes.map((c) => (
                <li key={c}>{c}</li>
              ))}
            </ul>
            <div className="form-actions">
              <CopyButton text={codes.join('\n')} label="recovery codes" />
              <button
                type="button"
                className="button button-primary"
                onClick={async () => {
                  const who = await reload();
                  navigate(homeFor(who), { replace: true });
                }}
              >
                I have saved them — continue
              </button>
            </div>
          </div>
        ) : mfa.totp_enabled ? (
          <p>
            On. {mfa.recovery_codes_left} recovery {mfa.recovery_codes_left === 1 ? 'code' : 'codes'} left.
            {mfa.policy === 'required' && ' Your organization requires it.'}
          </p>
        ) : (
          <Enrol
            onDone={(c) => {
              setCodes(c);
              setMfa({ ...mfa, totp_enabled: true, recovery_codes_left: c.length });
            }}
          />
        )}
      </section>
    </>
  );
}
