import { createContext, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from 'react';
import { ApiError } from '../api/client';

type Tone = 'error' | 'success' | 'info';

interface Toast {
  id: number;
  tone: Tone;
  title: string;
  detail?: string | undefined;
}

export interface Toaster {
  /** Shows the API's problem `detail` (or a plain message) as an error. */
  error(err: unknown, title?: string): void;
  success(title: string, detail?: string): void;
  info(title: string, detail?: string): void;
}

const ToastContext = createContext<Toaster | null>(null);

const LIFETIME_MS: Record<Tone, number> = { error: 9000, success: 4500, info: 6000 };

/** Words for an error from anywhere: the problem's detail, else the exception's message. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.problem.detail) return capitalise(err.problem.detail);
    if (err.status === 0) return err.message;
    if (err.status === 403) return 'You do not have permission to do that.';
    if (err.status === 404) return 'It does not exist any more, or you cannot see it.';
    if (err.status >= 500) return `The server hit a problem (HTTP ${err.status}). Try again shortly.`;
    return err.message;
  }
  if (err instanceof Error) return err.message;
  return String(err);
}

export function capitalise(s: string): string {
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : s;
}

export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(1);

  const dismiss = useCallback((id: number) => setToasts((all) => all.filter((t) => t.id !== id)), []);

  const push = useCallback(
    (tone: Tone, title: string, detail?: string) => {
      const id = next.current++;
      // The same message twice in a row (a poller failing) shows once.
      setToasts((all) => {
        const last = all[all.length - 1];
        if (last && last.title === title && last.detail === detail) return all;
        return [...all.slice(-3), { id, tone, title, detail }];
      });
      window.setTimeout(() => dismiss(id), LIFETIME_MS[tone]);
    },
    [dismiss],
  );

  const api = useMemo<Toaster>(
    () => ({
      error: (err, title) => (title ? push('error', title, errorText(err)) : push('error', errorText(err))),
      success: (title, detail) => push('success', title, detail),
      info: (title, detail) => push('info', title, detail),
    }),
    [push],
  );

  return (
    <ToastContext.Provider value={api}>
      {children}
      <div className="toasts" role="region" aria-label="Notifications">
        <div aria-live="polite" aria-relevant="additions">
          {toasts.map((t) => (
            <div key={t.id} className={`toast toast-${t.tone}`} role={t.tone === 'error' ? 'alert' : 'status'}>
              <div className="toast-text">
                <strong>{t.title}</strong>
                {t.detail && <span>{t.detail}</span>}
              </div>
              <button type="button" className="toast-close" onClick={() => dismiss(t.id)} aria-label="Dismiss">
                ×
              </button>
            </div>
          ))}
        </div>
      </div>
    </ToastContext.Provider>
  );
}

export function useToast(): Toaster {
  const ctx = useContext(ToastContext);
  if (!ctx) throw new Error('useToast outside ToastProvider');
  return ctx;
}
