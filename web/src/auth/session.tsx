import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { ApiError, csrfToken, logout, onSessionExpired, refreshSession, request } from '../api/client';
import type { Me, Permission } from '../api/types';

export type SessionStatus = 'loading' | 'signed_in' | 'signed_out' | 'expired';

export interface Session {
  status: SessionStatus;
  me: Me | null;
  /** Whether the signed-in account holds `permission`. */
  can(permission: Permission): boolean;
  /** Reads `/auth/me` again (after signing in, enrolling MFA, …). */
  reload(): Promise<Me | null>;
  signOut(): Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

async function fetchMe(): Promise<Me | null> {
  try {
    return await request<Me>('/api/v1/auth/me', { noRefresh: true });
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
  }
  // The access cookie may simply have run out (15 minutes): renew once, then ask again.
  if (!(await refreshSession())) return null;
  try {
    return await request<Me>('/api/v1/auth/me', { noRefresh: true });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

/** Holds who is signed in for every page; listens for the session ending under any request. */
export function SessionProvider({ children }: { children: ReactNode }) {
  const [status, setStatus] = useState<SessionStatus>('loading');
  const [me, setMe] = useState<Me | null>(null);

  const reload = useCallback(async () => {
    // Never signed in on this browser session: nothing to ask (and no 401 in the console).
    if (!csrfToken()) {
      setMe(null);
      setStatus('signed_out');
      return null;
    }
    try {
      const who = await fetchMe();
      setMe(who);
      setStatus(who ? 'signed_in' : 'signed_out');
      return who;
    } catch {
      // The server could not be reached: keep what we knew; pages show their own errors.
      setStatus((s) => (s === 'loading' ? 'signed_out' : s));
      return null;
    }
  }, []);

  useEffect(() => {
    void reload();
  }, [reload]);

  useEffect(
    () =>
      onSessionExpired(() => {
        setMe(null);
        setStatus((s) => (s === 'signed_in' ? 'expired' : 'signed_out'));
      }),
    [],
  );

  const signOut = useCallback(async () => {
    try {
      await logout();
    } catch {
      // Already gone on the server; the cookies are cleared either way below.
    }
    setMe(null);
    setStatus('signed_out');
  }, []);

  const value = useMemo<Session>(
    () => ({
      status,
      me,
      can: (p) => Boolean(me?.permissions.includes(p)),
      reload,
      signOut,
    }),
    [status, me, reload, signOut],
  );

  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const ctx = useContext(SessionContext);
  if (!ctx) throw new Error('useSession outside SessionProvider');
  return ctx;
}

/** Where a signed-in account starts: the most capable app it may use. */
export function homeFor(me: Me | null): string {
  if (!me) return '/';
  if (me.next_step === 'mfa_enrolment') return '/account/security';
  if (me.permissions.includes('users_manage')) return '/admin';
  if (me.permissions.includes('channels_write')) return '/stream';
  if (['free', 'premium', 'vip', 'consumer_admin'].includes(me.role)) return '/watch';
  if (me.permissions.includes('activities_read')) return '/ads';
  return '/account';
}
