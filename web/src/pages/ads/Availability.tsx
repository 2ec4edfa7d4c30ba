import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { Loading } from '../../auth/RequireAuth';
import { useSession } from '../../auth/session';
import { Field, useFieldErrors } from '../../components/Form';
import { useToast } from '../../components/Toasts';
import { PageHeader } from '../../components/ui';
import { useDocumentTitle } from '../../useDocumentTitle';
import { createAvailability, deleteAvailability, listAvailability, type Availability } from './api';
import { useName } from './common';

export function AvailabilityPage() {
  useDocumentTitle('Availability');
  return (
    <>
      <PageHeader title="Availability" lead="Days talent can record, or is away." />
      <AvailabilityEditor />
    </>
  );
}

const FIELDS = ['start_date', 'end_date', 'note'] as const;

/** A talent's own availability (producers and admins see everyone's). */
export function AvailabilityEditor() {
  const { me } = useSession();
  const toast = useToast();
  const name = useName();
  const mine = me?.role === 'talent';
  const [items, setItems] = useState<Availability[] | null>(null);
  const [start, setStart] = useState('');
  const [end, setEnd] = useState('');
  const [available, setAvailable] = useState(false);
  const [note, setNote] = useState('');
  const { errors, clear, report } = useFieldErrors(FIELDS);

  const load = useCallback(async () => {
    try {
      setItems(await listAvailability(mine ? me?.id : undefined));
    } catch (err) {
      toast.error(err, 'Availability could not be loaded');
      setItems((x) => x ?? []);
    }
  }, [mine, me?.id, toast]);
  useEffect(() => {
    void load();
  }, [load]);

  async function add(e: FormEvent) {
    e.preventDefault();
    clear();
    try {
      await createAvailability({ start_date: start, end_date: end || start, available, note });
      setStart('');
      setEnd('');
      setNote('');
      toast.success('Availability saved');
      void load();
    } catch (err) {
      report(err, 'The availability could not be saved');
    }
  }

  return (
    <section aria-labelledby="availability" className="ads-section">
      <h2 id="availability">{mine ? 'Your availability' : 'Talent availability'}</h2>
      {mine && (
        <form className="card form-inline" onSubmit={add} aria-label="Add availability">
          <Field label="From" error={errors.start_date}>
            {(p) => <input {...p} type="date" required value={start} onChange={(e) => setStart(e.target.value)} />}
          </Field>
          <Field label="To" error={errors.end_date}>
            {(p) => <input {...p} type="date" value={end} onChange={(e) => setEnd(e.target.value)} />}
          </Field>
          <Field label="Note" error={errors.note}>
            {(p) => <input {...p} value={note} onChange={(e) => setNote(e.target.value)} />}
          </Field>
          <label className="checkbox">
            <input type="checkbox" checked={available} onChange={(e) => setAvailable(e.target.checked)} /> Available (unticked: away)
          </label>
          <button type="submit" className="button button-primary">
            Add
          </button>
        </form>
      )}
      {items === null ? (
        <Loading />
      ) : items.length === 0 ? (
        <p className="muted">No days entered.</p>
      ) : (
        <table className="table">
          <thead>
            <tr>
              {!mine && <th>Talent</th>}
              <th>From</th>
              <th>To</th>
              <th>State</th>
              <th>Note</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {items.map((a) => (
              <tr key={a.id}>
                {!mine && <td>{name(a.user_id)}</td>}
                <td>{a.start_date}</td>
                <td>{a.end_date}</td>
                <td>{a.available ? 'Available' : 'Away'}</td>
                <td>{a.note}</td>
                <td>
                  <button
                    type="button"
                    className="button button-ghost button-small"
                    onClick={async () => {
                      try {
                        await deleteAvailability(a.id);
                        void load();
                      } catch (err) {
                        toast.error(err, 'Could not remove it');
                      }
                    }}
                  >
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
