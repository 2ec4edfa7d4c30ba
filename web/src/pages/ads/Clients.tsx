import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { Link, useParams } from 'react-router';
import { Loading } from '../../auth/RequireAuth';
import { useSession } from '../../auth/session';
import { Field, useFieldErrors } from '../../components/Form';
import { useToast } from '../../components/Toasts';
import { EmptyState, Modal, PageHeader } from '../../components/ui';
import { plural } from '../../lib/format';
import { useDocumentTitle } from '../../useDocumentTitle';
import {
  createClient,
  getBilling,
  getClient,
  listCampaigns,
  listClients,
  type AdClient,
  type Campaign,
  type ClientBilling,
} from './api';
import { ActivityTimeline, money, StatusPill, useLiveReload } from './common';

const FIELDS = ['name', 'email', 'phone', 'notes'] as const;

export function ClientsPage() {
  useDocumentTitle('Clients');
  const { can } = useSession();
  const toast = useToast();
  const [items, setItems] = useState<AdClient[] | null>(null);
  const [q, setQ] = useState('');
  const [creating, setCreating] = useState(false);
  const load = useCallback(async () => {
    try {
      setItems(await listClients({ q, sort: 'name' }));
    } catch (err) {
      toast.error(err, 'The clients could not be loaded');
      setItems((x) => x ?? []);
    }
  }, [q, toast]);
  useEffect(() => {
    void load();
  }, [load]);
  useLiveReload(['ads', ...(items ?? []).map((c) => `client:${c.id}`)], () => void load(), (e) => e.type.startsWith('client.') || e.type.startsWith('campaign.'));
  return (
    <>
      <PageHeader
        title="Clients"
        lead="Advertisers and their campaigns."
        actions={
          can('ad_clients_write') && (
            <button type="button" className="button button-primary" onClick={() => setCreating(true)}>
              New client
            </button>
          )
        }
      />
      <input className="search" type="search" placeholder="Search clients" aria-label="Search clients" value={q} onChange={(e) => setQ(e.target.value)} />
      {items === null ? (
        <Loading />
      ) : items.length === 0 ? (
        <EmptyState icon="users" title="No clients yet" />
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th>Name</th>
              <th>E-mail</th>
              <th>Phone</th>
            </tr>
          </thead>
          <tbody>
            {items.map((c) => (
              <tr key={c.id} data-client={c.name}>
                <td>
                  <Link to={`/ads/clients/${c.id}`}>{c.name}</Link>
                </td>
                <td>{c.email}</td>
                <td>{c.phone}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ClientForm
        open={creating}
        onClose={() => setCreating(false)}
        onSaved={() => {
          setCreating(false);
          void load();
        }}
      />
    </>
  );
}

function ClientForm({ open, onClose, onSaved }: { open: boolean; onClose: () => void; onSaved: () => void }) {
  const toast = useToast();
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [phone, setPhone] = useState('');
  const [notes, setNotes] = useState('');
  const { errors, clear, report } = useFieldErrors(FIELDS);
  async function submit(e: FormEvent) {
    e.preventDefault();
    clear();
    try {
      await createClient({ name, email, phone, notes });
      toast.success(`Client ${name} created`);
      setName('');
      setEmail('');
      setPhone('');
      setNotes('');
      onSaved();
    } catch (err) {
      report(err, 'The client could not be created');
    }
  }
  return (
    <Modal open={open} title="New client" onClose={onClose}>
      <form onSubmit={submit} aria-label="New client" className="form">
        <Field label="Name" error={errors.name}>
          {(p) => <input {...p} required value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="E-mail" error={errors.email}>
          {(p) => <input {...p} type="email" value={email} onChange={(e) => setEmail(e.target.value)} />}
        </Field>
        <Field label="Phone" error={errors.phone}>
          {(p) => <input {...p} value={phone} onChange={(e) => setPhone(e.target.value)} />}
        </Field>
        <Field label="Notes" error={errors.notes}>
          {(p) => <textarea {...p} value={notes} onChange={(e) => setNotes(e.target.value)} />}
        </Field>
        <div className="form-actions">
          <button type="submit" className="button button-primary">
            Create client
          </button>
        </div>
      </form>
    </Modal>
  );
}

export function ClientPage() {
  const { clientId = '' } = useParams();
  const toast = useToast();
  const [client, setClient] = useState<AdClient | null>(null);
  const [campaigns, setCampaigns] = useState<Campaign[]>([]);
  const [billing, setBilling] = useState<ClientBilling | null>(null);
  const [missing, setMissing] = useState(false);
  useDocumentTitle(client?.name ?? 'Client');
  const load = useCallback(async () => {
    try {
      const [c, cs] = await Promise.all([getClient(clientId), listCampaigns({ client_id: clientId })]);
      setClient(c);
      setCampaigns(cs);
      setBilling(await getBilling(clientId));
    } catch (err) {
      setMissing(true);
      toast.error(err, 'The client could not be loaded');
    }
  }, [clientId, toast]);
  useEffect(() => {
    void load();
  }, [load]);
  useLiveReload([`client:${clientId}`], () => void load());
  if (missing && !client) return <EmptyState icon="info" title="No such client" />;
  if (!client) return <Loading />;
  return (
    <>
      <PageHeader title={client.name} eyebrow="Client" lead={[client.email, client.phone].filter(Boolean).join(' · ')} />
      <section className="ads-section" aria-labelledby="client-campaigns">
        <h2 id="client-campaigns">Campaigns</h2>
        {campaigns.length === 0 ? (
          <p className="muted">No campaigns.</p>
        ) : (
          <ul className="plain-list">
            {campaigns.map((c) => (
              <li key={c.id}>
                <Link to={`/ads/campaigns/${c.id}`}>{c.name}</Link> <StatusPill status={c.status} /> <span className="muted small">{money(c.budget_cents)}</span>
              </li>
            ))}
          </ul>
        )}
      </section>
      {billing && (
        <section className="ads-section" aria-labelledby="client-billing">
          <h2 id="client-billing">Billing</h2>
          <BillingTable billing={billing} />
        </section>
      )}
      <ActivityTimeline entityType="client" entityId={client.id} />
    </>
  );
}

/** An advertiser's bill: delivered spots per month, with their invoice lines. */
export function BillingTable({ billing }: { billing: ClientBilling }) {
  return (
    <div className="card" data-testid="billing">
      <p>
        Billed so far <strong data-testid="billing-total">{money(billing.total_cents)}</strong>
        <span className="muted small"> · booked, not yet aired {money(billing.open_booked_cents)}</span>
      </p>
      {billing.months.length === 0 ? (
        <p className="muted">No spot has aired yet.</p>
      ) : (
        billing.months.map((m) => (
          <details key={m.month} open data-month={m.month}>
            <summary>
              {m.month}: {plural(m.delivered_spots, 'spot')}, <strong>{money(m.amount_cents)}</strong>
            </summary>
            <table className="table">
              <thead>
                <tr>
                  <th>Campaign</th>
                  <th>Show</th>
                  <th>Episode</th>
                  <th>Aired</th>
                  <th>Spot</th>
                  <th>Amount</th>
                </tr>
              </thead>
              <tbody>
                {m.lines.map((l) => (
                  <tr key={l.placement_id}>
                    <td>{l.campaign_name}</td>
                    <td>{l.show_name}</td>
                    <td>{l.episode_title}</td>
                    <td>{l.air_date ?? '—'}</td>
                    <td>{l.position}-roll</td>
                    <td>{money(l.amount_cents)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        ))
      )}
    </div>
  );
}
