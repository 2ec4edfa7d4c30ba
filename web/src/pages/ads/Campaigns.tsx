import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { Loading } from '../../auth/RequireAuth';
import { useSession } from '../../auth/session';
import { Field, useFieldErrors } from '../../components/Form';
import { useToast } from '../../components/Toasts';
import { EmptyState, Modal, PageHeader } from '../../components/ui';
import { humanize } from '../../lib/format';
import { useEvents } from '../../live/events';
import { useDocumentTitle } from '../../useDocumentTitle';
import {
  addTeamMember,
  conflictCurrent,
  createCampaign,
  createPlacement,
  deletePlacement,
  getCampaign,
  getReport,
  listCampaigns,
  listClients,
  listInventory,
  listPlacements,
  removeTeamMember,
  updateCampaign,
  type AdClient,
  type Campaign,
  type CampaignBody,
  type CampaignReport,
  type InventoryEpisode,
  type Placement,
} from './api';
import { ActivityTimeline, CAMPAIGN_STATUSES, money, PresenceBar, StatusPill, toCents, useLiveReload, useName, usePeople, usePresence } from './common';
import { ReportCard } from './Dashboard';

const FIELDS = ['client_id', 'name', 'status', 'budget_cents', 'start_date', 'end_date'] as const;

export function CampaignsPage() {
  useDocumentTitle('Campaigns');
  const { can, me } = useSession();
  const toast = useToast();
  const [items, setItems] = useState<Campaign[] | null>(null);
  const [clients, setClients] = useState<AdClient[]>([]);
  const [status, setStatus] = useState('');
  const [creating, setCreating] = useState(false);
  const load = useCallback(async () => {
    try {
      const [cs, cl] = await Promise.all([listCampaigns({ status, sort: 'name' }), listClients()]);
      setItems(cs);
      setClients(cl);
    } catch (err) {
      toast.error(err, 'The campaigns could not be loaded');
      setItems((x) => x ?? []);
    }
  }, [status, toast]);
  useEffect(() => {
    void load();
  }, [load]);
  useLiveReload(
    ['ads', ...(me ? [`user:${me.id}`] : []), ...clients.map((c) => `client:${c.id}`), ...(items ?? []).map((c) => `campaign:${c.id}`)],
    () => void load(),
    (e) => e.type.startsWith('campaign.') || e.type === 'notification',
  );
  const clientName = (id: string) => clients.find((c) => c.id === id)?.name ?? '';
  return (
    <>
      <PageHeader
        title="Campaigns"
        lead="Budgets, flight dates, account teams and booked spots."
        actions={
          can('campaigns_write') && (
            <button type="button" className="button button-primary" onClick={() => setCreating(true)}>
              New campaign
            </button>
          )
        }
      />
      <label className="filter">
        Status{' '}
        <select value={status} onChange={(e) => setStatus(e.target.value)} aria-label="Filter by status">
          <option value="">All</option>
          {CAMPAIGN_STATUSES.map((s) => (
            <option key={s} value={s}>
              {humanize(s)}
            </option>
          ))}
        </select>
      </label>
      {items === null ? (
        <Loading />
      ) : items.length === 0 ? (
        <EmptyState icon="chart" title="No campaigns" />
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th>Campaign</th>
              <th>Client</th>
              <th>Status</th>
              <th>Budget</th>
              <th>Flight</th>
            </tr>
          </thead>
          <tbody>
            {items.map((c) => (
              <tr key={c.id} data-campaign={c.name}>
                <td>
                  <Link to={`/ads/campaigns/${c.id}`}>{c.name}</Link>
                </td>
                <td>{clientName(c.client_id)}</td>
                <td>
                  <StatusPill status={c.status} />
                </td>
                <td>{money(c.budget_cents)}</td>
                <td>
                  {c.start_date ?? '…'} – {c.end_date ?? '…'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {creating && <NewCampaign clients={clients} onClose={() => setCreating(false)} />}
    </>
  );
}

function NewCampaign({ clients, onClose }: { clients: AdClient[]; onClose: () => void }) {
  const toast = useToast();
  const navigate = useNavigate();
  const [clientId, setClientId] = useState(clients[0]?.id ?? '');
  const [name, setName] = useState('');
  const [budget, setBudget] = useState('');
  const [start, setStart] = useState('');
  const [end, setEnd] = useState('');
  const { errors, clear, report, setErrors } = useFieldErrors(FIELDS);
  async function submit(e: FormEvent) {
    e.preventDefault();
    clear();
    const cents = budget ? toCents(budget) : 0;
    if (Number.isNaN(cents)) {
      setErrors({ budget_cents: 'Budget must be an amount in dollars' });
      return;
    }
    try {
      const c = await createCampaign({ client_id: clientId, name, budget_cents: cents, start_date: start || null, end_date: end || null });
      toast.success(`Campaign ${c.name} created`);
      navigate(`/ads/campaigns/${c.id}`);
    } catch (err) {
      report(err, 'The campaign could not be created');
    }
  }
  return (
    <Modal open title="New campaign" onClose={onClose}>
      {clients.length === 0 ? (
        <p>
          Create a <Link to="/ads/clients">client</Link> first.
        </p>
      ) : (
        <form onSubmit={submit} aria-label="New campaign" className="form">
          <Field label="Client" error={errors.client_id}>
            {(p) => (
              <select {...p} value={clientId} onChange={(e) => setClientId(e.target.value)}>
                {clients.map((c) => (
                  <option key={c.id} value={c.id}>
                    {c.name}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Name" error={errors.name}>
            {(p) => <input {...p} required value={name} onChange={(e) => setName(e.target.value)} />}
          </Field>
          <Field label="Budget ($)" error={errors.budget_cents}>
            {(p) => <input {...p} inputMode="decimal" value={budget} onChange={(e) => setBudget(e.target.value)} />}
          </Field>
          <Field label="Starts" error={errors.start_date}>
            {(p) => <input {...p} type="date" value={start} onChange={(e) => setStart(e.target.value)} />}
          </Field>
          <Field label="Ends" error={errors.end_date}>
            {(p) => <input {...p} type="date" value={end} onChange={(e) => setEnd(e.target.value)} />}
          </Field>
          <div className="form-actions">
            <button type="submit" className="button button-primary">
              Create campaign
            </button>
          </div>
        </form>
      )}
    </Modal>
  );
}

// ---- one campaign ---------------------------------------------------------------------------

interface Draft {
  name: string;
  status: string;
  budget: string;
  start_date: string;
  end_date: string;
}

function draftOf(c: Campaign): Draft {
  return {
    name: c.name,
    status: c.status,
    budget: (c.budget_cents / 100).toFixed(2),
    start_date: c.start_date ?? '',
    end_date: c.end_date ?? '',
  };
}

const LABELS: Record<keyof Draft, string> = { name: 'Name', status: 'Status', budget: 'Budget ($)', start_date: 'Starts', end_date: 'Ends' };
const KEYS = Object.keys(LABELS) as (keyof Draft)[];

function showValue(k: keyof Draft, v: string): string {
  if (k === 'budget') return money(toCents(v));
  if (k === 'status') return humanize(v);
  return v || '—';
}

/** The fields of `draft` that differ from `base`, as an update body. */
function bodyOf(draft: Draft, base: Campaign): CampaignBody | string {
  const was = draftOf(base);
  const body: CampaignBody = {};
  if (draft.name !== was.name) body.name = draft.name;
  if (draft.status !== was.status) body.status = draft.status;
  if (draft.budget !== was.budget) {
    const cents = toCents(draft.budget);
    if (Number.isNaN(cents)) return 'Budget must be an amount in dollars';
    body.budget_cents = cents;
  }
  if (draft.start_date !== was.start_date) body.start_date = draft.start_date || null;
  if (draft.end_date !== was.end_date) body.end_date = draft.end_date || null;
  return body;
}

interface Conflict {
  /** The campaign as saved by the other person. */
  theirs: Campaign;
  /** What this page tried to save, and against which version. */
  mine: Draft;
  base: Campaign;
}

export function CampaignPage() {
  const { campaignId = '' } = useParams();
  const { me } = useSession();
  const toast = useToast();
  const name = useName();
  const [base, setBase] = useState<Campaign | null>(null);
  const [draft, setDraft] = useState<Draft | null>(null);
  const [missing, setMissing] = useState(false);
  const [saving, setSaving] = useState(false);
  const [conflict, setConflict] = useState<Conflict | null>(null);
  const [remote, setRemote] = useState<{ by: string | null; campaign: Campaign } | null>(null);
  const { errors, clear, report, setErrors } = useFieldErrors(FIELDS);
  useDocumentTitle(base?.name ?? 'Campaign');

  const dirty = useMemo(() => !!(base && draft && KEYS.some((k) => draftOf(base)[k] !== draft[k])), [base, draft]);
  const dirtyRef = useRef(dirty);
  dirtyRef.current = dirty;
  const baseRef = useRef(base);
  baseRef.current = base;
  const topic = base ? `campaign:${base.id}` : null;
  const present = usePresence(topic, dirty);

  const load = useCallback(
    async (by: string | null = null) => {
      try {
        const c = await getCampaign(campaignId);
        if (dirtyRef.current) {
          // Someone saved while this page has unsaved edits: keep the edits (and the version
          // they were made on) and say so; saving shows the conflict.
          const b = baseRef.current;
          if (b && c.version !== b.version) setRemote({ by, campaign: c });
          setBase(b ? { ...b, team: c.team } : c);
        } else {
          setBase(c);
          setDraft(draftOf(c));
          setRemote(null);
        }
      } catch (err) {
        setMissing(true);
        toast.error(err, 'The campaign could not be loaded');
      }
    },
    [campaignId, toast],
  );
  useEffect(() => {
    setBase(null);
    setDraft(null);
    setConflict(null);
    void load();
  }, [load]);
  useEvents(topic ? [topic] : [], (e) => {
    if (e.type === 'presence') return;
    const by = typeof e.data['actor_id'] === 'string' ? (e.data['actor_id'] as string) : null;
    // Our own save (or one already loaded): the page shows this version.
    if (e.type === 'campaign.updated' && e.data['version'] === baseRef.current?.version) return;
    if (e.type === 'campaign.deleted') {
      setMissing(true);
      setBase(null);
      return;
    }
    void load(by);
  });

  async function save(d: Draft, against: Campaign, original: Campaign, retried = false) {
    clear();
    const body = bodyOf(d, original);
    if (typeof body === 'string') {
      setErrors({ budget_cents: body });
      return;
    }
    setSaving(true);
    try {
      const c = await updateCampaign(against.id, against.version, body);
      setBase(c);
      setDraft(draftOf(c));
      setConflict(null);
      setRemote(null);
      toast.success('Campaign saved');
    } catch (err) {
      const theirs = conflictCurrent<Campaign>(err);
      if (theirs) {
        // They changed other fields (or the team) than the ones edited here: nothing to decide,
        // so this change goes on top of theirs once. The same field changed by both: ask.
        const was = draftOf(original);
        const now = draftOf(theirs);
        const overlap = KEYS.some((k) => d[k] !== was[k] && now[k] !== was[k] && now[k] !== d[k]);
        if (!overlap && !retried) {
          setSaving(false);
          await save(d, theirs, original, true);
          return;
        }
        setConflict({ theirs, mine: d, base: original });
      } else {
        report(err, 'The campaign could not be saved');
      }
    } finally {
      setSaving(false);
    }
  }

  if (missing && !base) return <EmptyState icon="info" title="This campaign is gone or not yours to see" />;
  if (!base || !draft) return <Loading />;
  const isOwner = base.owner_id === me?.id;
  const mine = base.team.find((m) => m.user_id === me?.id);
  const canEdit = me?.role === 'admin' || isOwner || !!mine?.permissions.includes('edit');
  const canManage = me?.role === 'admin' || isOwner || !!mine?.permissions.includes('manage_team');
  const set = (k: keyof Draft) => (e: { target: { value: string } }) => setDraft({ ...draft, [k]: e.target.value });

  return (
    <>
      <PageHeader title={base.name} eyebrow="Campaign" lead={<StatusPill status={base.status} />} actions={<PresenceBar present={present} />} />
      {remote && !conflict && (
        <div className="notice notice-warn" role="status" data-testid="remote-change">
          {name(remote.by)} saved a change to this campaign while you were editing. Saving will show both versions.
        </div>
      )}
      {conflict && (
        <section className="card conflict" role="alert" aria-labelledby="conflict-title" data-testid="conflict">
          <h2 id="conflict-title">Someone else saved this campaign first</h2>
          <p>
            Your change was not saved. This is what is stored now (version {conflict.theirs.version}) next to what you tried to save.
          </p>
          <table className="table">
            <thead>
              <tr>
                <th>Field</th>
                <th>Their value</th>
                <th>Your value</th>
              </tr>
            </thead>
            <tbody>
              {KEYS.filter((k) => draftOf(conflict.theirs)[k] !== conflict.mine[k]).map((k) => (
                <tr key={k} data-field={k}>
                  <th scope="row">{LABELS[k]}</th>
                  <td data-testid={`theirs-${k}`}>{showValue(k, draftOf(conflict.theirs)[k])}</td>
                  <td data-testid={`mine-${k}`}>{showValue(k, conflict.mine[k])}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="form-actions">
            <button
              type="button"
              className="button button-secondary"
              onClick={() => {
                setBase(conflict.theirs);
                setDraft(draftOf(conflict.theirs));
                setConflict(null);
                setRemote(null);
              }}
            >
              Keep theirs
            </button>
            <button type="button" className="button button-primary" disabled={saving} onClick={() => save(conflict.mine, conflict.theirs, conflict.base)}>
              Apply mine again
            </button>
          </div>
        </section>
      )}
      <div className="ads-grid">
        <form
          className="card form"
          aria-label="Campaign details"
          onSubmit={(e) => {
            e.preventDefault();
            void save(draft, base, base);
          }}
        >
          <h2>Details</h2>
          <Field label="Name" error={errors.name}>
            {(p) => <input {...p} value={draft.name} onChange={set('name')} readOnly={!canEdit} required />}
          </Field>
          <Field label="Status" error={errors.status}>
            {(p) => (
              <select {...p} value={draft.status} onChange={set('status')} disabled={!canEdit}>
                {CAMPAIGN_STATUSES.map((s) => (
                  <option key={s} value={s}>
                    {humanize(s)}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Budget ($)" error={errors.budget_cents}>
            {(p) => <input {...p} inputMode="decimal" value={draft.budget} onChange={set('budget')} readOnly={!canEdit} />}
          </Field>
          <Field label="Starts" error={errors.start_date}>
            {(p) => <input {...p} type="date" value={draft.start_date} onChange={set('start_date')} readOnly={!canEdit} />}
          </Field>
          <Field label="Ends" error={errors.end_date}>
            {(p) => <input {...p} type="date" value={draft.end_date} onChange={set('end_date')} readOnly={!canEdit} />}
          </Field>
          {canEdit && (
            <div className="form-actions">
              <button type="submit" className="button button-primary" disabled={saving || !dirty}>
                Save campaign
              </button>
              {dirty && (
                <button type="button" className="button button-ghost" onClick={() => setDraft(draftOf(base))}>
                  Discard
                </button>
              )}
            </div>
          )}
          <p className="small muted">
            Owner {name(base.owner_id)} · version {base.version}
          </p>
        </form>
        <Team campaign={base} canManage={canManage} onChanged={(c) => (dirty ? setBase({ ...base, team: c.team }) : load())} />
      </div>
      <Placements campaign={base} canEdit={canEdit} />
      <ActivityTimeline entityType="campaign" entityId={base.id} />
    </>
  );
}

function Team({ campaign, canManage, onChanged }: { campaign: Campaign; canManage: boolean; onChanged: (c: Campaign) => void }) {
  const toast = useToast();
  const name = useName();
  const people = usePeople().filter((p) => (p.role === 'seller' || p.role === 'admin') && !campaign.team.some((m) => m.user_id === p.id) && p.id !== campaign.owner_id);
  const [userId, setUserId] = useState('');
  const [edit, setEdit] = useState(true);
  const [manage, setManage] = useState(false);
  async function add(e: FormEvent) {
    e.preventDefault();
    const who = userId || people[0]?.id;
    if (!who) return;
    try {
      const permissions = [...(edit ? ['edit'] : []), ...(manage ? ['manage_team'] : [])];
      onChanged(await addTeamMember(campaign.id, { user_id: who, permissions }));
      setUserId('');
    } catch (err) {
      toast.error(err, 'The member could not be added');
    }
  }
  return (
    <section className="card" aria-labelledby="team">
      <h2 id="team">Account team</h2>
      <ul className="plain-list" aria-label="Team members">
        {campaign.owner_id && (
          <li>
            {name(campaign.owner_id)} <span className="badge badge-info">owner</span>
          </li>
        )}
        {campaign.team.map((m) => (
          <li key={m.user_id} data-member={m.user_id}>
            {name(m.user_id)} <span className="muted small">{m.permissions.join(', ')}</span>
            {canManage && (
              <button
                type="button"
                className="button button-ghost button-small"
                aria-label={`Remove ${name(m.user_id)}`}
                onClick={async () => {
                  try {
                    await removeTeamMember(campaign.id, m.user_id);
                    onChanged({ ...campaign, team: campaign.team.filter((x) => x.user_id !== m.user_id) });
                  } catch (err) {
                    toast.error(err, 'The member could not be removed');
                  }
                }}
              >
                Remove
              </button>
            )}
          </li>
        ))}
      </ul>
      {canManage && people.length > 0 && (
        <form className="form-inline" onSubmit={add} aria-label="Add team member">
          <Field label="Seller">
            {(p) => (
              <select {...p} value={userId || people[0]?.id} onChange={(e) => setUserId(e.target.value)}>
                {people.map((x) => (
                  <option key={x.id} value={x.id}>
                    {x.display_name || x.email}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <label className="checkbox">
            <input type="checkbox" checked={edit} onChange={(e) => setEdit(e.target.checked)} /> Can edit
          </label>
          <label className="checkbox">
            <input type="checkbox" checked={manage} onChange={(e) => setManage(e.target.checked)} /> Can manage team
          </label>
          <button type="submit" className="button button-secondary">
            Add
          </button>
        </form>
      )}
    </section>
  );
}

function Placements({ campaign, canEdit }: { campaign: Campaign; canEdit: boolean }) {
  const toast = useToast();
  const [items, setItems] = useState<Placement[] | null>(null);
  const [report, setReport] = useState<CampaignReport | null>(null);
  const [inventory, setInventory] = useState<InventoryEpisode[]>([]);
  const [episodeId, setEpisodeId] = useState('');
  const [position, setPosition] = useState('pre');
  const [rate, setRate] = useState('');
  const load = useCallback(async () => {
    try {
      const [p, r] = await Promise.all([listPlacements(campaign.id), getReport(campaign.id)]);
      setItems(p);
      setReport(r);
    } catch (err) {
      toast.error(err, 'The spots could not be loaded');
      setItems((x) => x ?? []);
    }
  }, [campaign.id, toast]);
  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => {
    if (canEdit) listInventory().then(setInventory, () => setInventory([]));
  }, [canEdit]);
  useLiveReload([`campaign:${campaign.id}`], () => void load());
  async function add(e: FormEvent) {
    e.preventDefault();
    const cents = toCents(rate);
    const ep = episodeId || inventory[0]?.id;
    if (!ep || Number.isNaN(cents)) {
      toast.error(new Error('Pick an episode and a rate in dollars'));
      return;
    }
    try {
      await createPlacement(campaign.id, { episode_id: ep, position, rate_cents: cents });
      setRate('');
      void load();
    } catch (err) {
      toast.error(err, 'The spot could not be booked');
    }
  }
  return (
    <section className="ads-section" aria-labelledby="spots">
      <h2 id="spots">Spots and report</h2>
      {report && <ReportCard report={report} link={false} />}
      {items === null ? (
        <Loading />
      ) : items.length === 0 ? (
        <p className="muted">No spots booked.</p>
      ) : (
        <table className="table" aria-label="Booked spots">
          <thead>
            <tr>
              <th>Show</th>
              <th>Episode</th>
              <th>Airs</th>
              <th>Spot</th>
              <th>Rate</th>
              <th>Delivered</th>
              {canEdit && <th />}
            </tr>
          </thead>
          <tbody>
            {items.map((p) => (
              <tr key={p.id}>
                <td>{p.show_name}</td>
                <td>{p.episode_title}</td>
                <td>{p.air_date ?? '—'}</td>
                <td>{p.position}-roll</td>
                <td>{money(p.rate_cents)}</td>
                <td>{p.delivered ? 'Aired' : 'Not yet'}</td>
                {canEdit && (
                  <td>
                    <button
                      type="button"
                      className="button button-ghost button-small"
                      onClick={async () => {
                        try {
                          await deletePlacement(campaign.id, p.id);
                          void load();
                        } catch (err) {
                          toast.error(err, 'The spot could not be cancelled');
                        }
                      }}
                    >
                      Cancel spot
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {canEdit && inventory.length > 0 && (
        <form className="form-inline card" onSubmit={add} aria-label="Book a spot">
          <Field label="Episode">
            {(p) => (
              <select {...p} value={episodeId || inventory[0]?.id} onChange={(e) => setEpisodeId(e.target.value)}>
                {inventory.map((e) => (
                  <option key={e.id} value={e.id}>
                    {e.show_name}: {e.title} {e.air_date ? `(${e.air_date})` : ''}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Position">
            {(p) => (
              <select {...p} value={position} onChange={(e) => setPosition(e.target.value)}>
                <option value="pre">Pre-roll</option>
                <option value="mid">Mid-roll</option>
                <option value="post">Post-roll</option>
              </select>
            )}
          </Field>
          <Field label="Rate ($)">{(p) => <input {...p} required inputMode="decimal" value={rate} onChange={(e) => setRate(e.target.value)} />}</Field>
          <button type="submit" className="button button-secondary">
            Book spot
          </button>
        </form>
      )}
    </section>
  );
}
