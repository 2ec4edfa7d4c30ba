import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { Loading } from '../../auth/RequireAuth';
import { useSession } from '../../auth/session';
import { Field, useFieldErrors } from '../../components/Form';
import { useToast } from '../../components/Toasts';
import { EmptyState, Modal, PageHeader } from '../../components/ui';
import { useDocumentTitle } from '../../useDocumentTitle';
import { conflictCurrent, createEpisode, createShow, listEpisodes, listShows, updateEpisode, type Episode, type Show } from './api';
import { ActivityTimeline, EPISODE_STATUSES, StatusPill, useLiveReload, useName, usePeople } from './common';

const EP_FIELDS = ['show_id', 'title', 'air_date', 'record_date', 'status', 'talent_ids'] as const;

/** Shows and their episodes; producers schedule episodes and assign talent. */
export function ShowsPage() {
  useDocumentTitle('Shows and episodes');
  const { can } = useSession();
  const toast = useToast();
  const name = useName();
  const [shows, setShows] = useState<Show[] | null>(null);
  const [episodes, setEpisodes] = useState<Episode[]>([]);
  const [newShow, setNewShow] = useState('');
  const [editing, setEditing] = useState<Episode | 'new' | null>(null);
  const [timeline, setTimeline] = useState<string | null>(null);
  const canEpisodes = can('episodes_read');
  const load = useCallback(async () => {
    try {
      const [s, e] = await Promise.all([listShows(), canEpisodes ? listEpisodes() : Promise.resolve([])]);
      setShows(s);
      setEpisodes(e);
    } catch (err) {
      toast.error(err, 'The shows could not be loaded');
      setShows((x) => x ?? []);
    }
  }, [toast, canEpisodes]);
  useEffect(() => {
    void load();
  }, [load]);
  useLiveReload(['ads', ...(shows ?? []).map((s) => `show:${s.id}`)], () => void load(), (e) => e.type.startsWith('show.') || e.type.startsWith('episode.'));

  async function addShow(e: FormEvent) {
    e.preventDefault();
    try {
      await createShow({ name: newShow });
      setNewShow('');
      void load();
    } catch (err) {
      toast.error(err, 'The show could not be created');
    }
  }

  if (shows === null) return <Loading />;
  return (
    <>
      <PageHeader
        title="Shows and episodes"
        lead="The schedule: air and recording dates, status and assigned talent."
        actions={
          can('episodes_write') && (
            <button type="button" className="button button-primary" onClick={() => setEditing('new')} disabled={shows.length === 0}>
              New episode
            </button>
          )
        }
      />
      {can('shows_write') && (
        <form className="form-inline card" onSubmit={addShow} aria-label="New show">
          <Field label="New show">{(p) => <input {...p} required value={newShow} onChange={(e) => setNewShow(e.target.value)} />}</Field>
          <button type="submit" className="button button-secondary">
            Add show
          </button>
        </form>
      )}
      {shows.length === 0 ? (
        <EmptyState icon="play" title="No shows yet" />
      ) : (
        shows.map((s) => {
          const eps = episodes.filter((e) => e.show_id === s.id);
          return (
            <section key={s.id} className="ads-section" aria-label={s.name} data-show={s.name}>
              <h2>
                {s.name} {s.category && <span className="muted small">{s.category}</span>}
              </h2>
              {canEpisodes &&
                (eps.length === 0 ? (
                  <p className="muted">No episodes.</p>
                ) : (
                  <table className="table">
                    <thead>
                      <tr>
                        <th>Episode</th>
                        <th>Records</th>
                        <th>Airs</th>
                        <th>Status</th>
                        <th>Talent</th>
                        <th />
                      </tr>
                    </thead>
                    <tbody>
                      {eps.map((e) => (
                        <tr key={e.id} data-episode={e.title}>
                          <td>{e.title}</td>
                          <td>{e.record_date ?? '—'}</td>
                          <td>{e.air_date ?? '—'}</td>
                          <td>
                            <StatusPill status={e.status} />
                          </td>
                          <td>{e.talent_ids.map(name).join(', ') || '—'}</td>
                          <td className="row-actions">
                            {can('episodes_write') && (
                              <button type="button" className="button button-ghost button-small" onClick={() => setEditing(e)} aria-label={`Edit ${e.title}`}>
                                Edit
                              </button>
                            )}
                            <button type="button" className="button button-ghost button-small" onClick={() => setTimeline(timeline === e.id ? null : e.id)}>
                              Activity
                            </button>
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                ))}
              {eps.some((e) => e.id === timeline) && timeline && <ActivityTimeline entityType="episode" entityId={timeline} />}
            </section>
          );
        })
      )}
      {editing && (
        <EpisodeForm
          shows={shows}
          episode={editing === 'new' ? null : editing}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            void load();
          }}
        />
      )}
    </>
  );
}

function EpisodeForm({ shows, episode, onClose, onSaved }: { shows: Show[]; episode: Episode | null; onClose: () => void; onSaved: () => void }) {
  const toast = useToast();
  const talent = usePeople().filter((p) => p.role === 'talent');
  const [showId, setShowId] = useState(episode?.show_id ?? shows[0]?.id ?? '');
  const [title, setTitle] = useState(episode?.title ?? '');
  const [airDate, setAirDate] = useState(episode?.air_date ?? '');
  const [recordDate, setRecordDate] = useState(episode?.record_date ?? '');
  const [status, setStatus] = useState(episode?.status ?? 'scheduled');
  const [talentIds, setTalentIds] = useState<string[]>(episode?.talent_ids ?? []);
  const { errors, clear, report } = useFieldErrors(EP_FIELDS);
  const name = useName();
  // The version this form edits; after a conflict, the other person's (so "save again" applies
  // this form over theirs, knowingly).
  const [version, setVersion] = useState(episode?.version ?? 0);
  const [theirs, setTheirs] = useState<Episode | null>(null);
  async function submit(e: FormEvent) {
    e.preventDefault();
    clear();
    const body = { show_id: showId, title, air_date: airDate || null, record_date: recordDate || null, status, talent_ids: talentIds };
    try {
      if (episode) await updateEpisode(episode.id, version, body);
      else await createEpisode(body);
      toast.success(episode ? 'Episode saved' : 'Episode created');
      onSaved();
    } catch (err) {
      const current = conflictCurrent<Episode>(err);
      if (current) {
        setTheirs(current);
        setVersion(current.version);
        return;
      }
      report(err, 'The episode could not be saved');
    }
  }
  function keepTheirs(t: Episode) {
    setShowId(t.show_id);
    setTitle(t.title);
    setAirDate(t.air_date ?? '');
    setRecordDate(t.record_date ?? '');
    setStatus(t.status);
    setTalentIds(t.talent_ids);
    setTheirs(null);
  }
  const label = episode ? `Edit ${episode.title}` : 'New episode';
  return (
    <Modal open title={label} onClose={onClose}>
      <form onSubmit={submit} aria-label={label} className="form">
        {theirs && (
          <div className="notice notice-warn conflict" role="alert" data-testid="conflict">
            <p>
              <strong>Someone else saved this episode first.</strong> Stored now: “{theirs.title}”, {theirs.status}, airs {theirs.air_date ?? '—'},
              records {theirs.record_date ?? '—'}, talent {theirs.talent_ids.map(name).join(', ') || 'none'}.
            </p>
            <div className="form-actions">
              <button type="button" className="button button-secondary" onClick={() => keepTheirs(theirs)}>
                Keep theirs
              </button>
              <button type="submit" className="button button-primary">
                Apply mine again
              </button>
            </div>
          </div>
        )}
        <Field label="Show" error={errors.show_id}>
          {(p) => (
            <select {...p} value={showId} onChange={(e) => setShowId(e.target.value)}>
              {shows.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.name}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Title" error={errors.title}>
          {(p) => <input {...p} required value={title} onChange={(e) => setTitle(e.target.value)} />}
        </Field>
        <Field label="Records on" error={errors.record_date}>
          {(p) => <input {...p} type="date" value={recordDate} onChange={(e) => setRecordDate(e.target.value)} />}
        </Field>
        <Field label="Airs on" error={errors.air_date}>
          {(p) => <input {...p} type="date" value={airDate} onChange={(e) => setAirDate(e.target.value)} />}
        </Field>
        <Field label="Status" error={errors.status}>
          {(p) => (
            <select {...p} value={status} onChange={(e) => setStatus(e.target.value)}>
              {EPISODE_STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          )}
        </Field>
        <fieldset className="field">
          <legend>Talent</legend>
          {talent.length === 0 && <p className="muted small">No talent users in this organization.</p>}
          {talent.map((t) => (
            <label key={t.id} className="checkbox">
              <input
                type="checkbox"
                checked={talentIds.includes(t.id)}
                onChange={(e) => setTalentIds((xs) => (e.target.checked ? [...xs, t.id] : xs.filter((x) => x !== t.id)))}
              />{' '}
              {t.display_name || t.email}
            </label>
          ))}
          {errors.talent_ids && <p className="field-error">{errors.talent_ids}</p>}
        </fieldset>
        <div className="form-actions">
          <button type="submit" className="button button-primary">
            {episode ? 'Save episode' : 'Create episode'}
          </button>
        </div>
      </form>
    </Modal>
  );
}
