import { useCallback, useId, useState, type ReactNode } from 'react';
import { ApiError } from '../api/client';
import { capitalise, errorText, useToast } from './Toasts';

/** Props every labelled control gets from <Field>. */
export interface ControlProps {
  id: string;
  'aria-invalid'?: true;
  'aria-describedby'?: string;
}

interface FieldProps {
  label: ReactNode;
  error?: string | undefined;
  hint?: ReactNode;
  /** Extra content after the label (e.g. an "optional" note). */
  aside?: ReactNode;
  className?: string;
  children: (props: ControlProps) => ReactNode;
}

/** A label, its control, a hint and the field's error, wired for screen readers. */
export function Field({ label, error, hint, aside, className, children }: FieldProps) {
  const id = useId();
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const describedBy = [hint ? hintId : '', error ? errorId : ''].filter(Boolean).join(' ');
  const props: ControlProps = { id };
  if (error) props['aria-invalid'] = true;
  if (describedBy) props['aria-describedby'] = describedBy;
  return (
    <div className={`field${className ? ` ${className}` : ''}`}>
      <div className="field-label">
        <label htmlFor={id}>{label}</label>
        {aside}
      </div>
      {children(props)}
      {hint && (
        <p className="hint" id={hintId}>
          {hint}
        </p>
      )}
      {error && (
        <p className="field-error" id={errorId}>
          {error}
        </p>
      )}
    </div>
  );
}

/**
 * Field errors from API problems: an error naming one of `fields` goes under that field,
 * anything else becomes a toast.
 */
export function useFieldErrors<F extends string>(fields: readonly F[]) {
  const toast = useToast();
  const [errors, setErrors] = useState<Partial<Record<F, string>>>({});

  const clear = useCallback((field?: F) => {
    setErrors((e) => {
      if (!field) return {};
      if (!(field in e)) return e;
      const next = { ...e };
      delete next[field];
      return next;
    });
  }, []);

  /** Routes an error to its field; answers true when it was shown inline. */
  const report = useCallback(
    (err: unknown, title?: string): boolean => {
      if (err instanceof ApiError && err.field) {
        // The server names nested fields with dots (e.g. `destination_ids.0`); match the head.
        const head = err.field.split(/[.[]/)[0] as F;
        const match = fields.find((f) => f === err.field || f === head);
        if (match) {
          setErrors({ [match]: capitalise(err.problem.detail ?? errorText(err)) } as Partial<Record<F, string>>);
          return true;
        }
      }
      toast.error(err, title);
      return false;
    },
    [toast, fields.join('|')],
  );

  return { errors, setErrors, clear, report };
}
