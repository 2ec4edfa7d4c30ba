import { useCallback, useEffect, useMemo, useState } from 'react';
import { Link } from 'react-router';
import { Loading } from '../../auth/RequireAuth';
import { useSession } from '../../auth/session';
import { useToast } from '../../components/Toasts';
import { EmptyState, PageHeader, Stat } from '../../components/ui';
import { humanize, plural } from '../../lib/format';
import { useDocumentTitle } from '../../useDocumentTitle';
import {
  getBilling,
  getReport,
  listCampaigns,
  listClients,
  listEpisodes,
  listShows,
  type AdClient,
  type Campaign,
  type CampaignReport,
  type ClientBilling,
  type Episode,
  type Show,
} from './api';
import { AvailabilityEditor } from './Availability';
import { BillingTable } from './Clients';
import { CAMPAIGN_STATUSES, money, StatusPill, useLiveReload } from './common';

/** The `/ads` home: what matters to the caller's role. Admins see every panel. */
export function AdsDashboardPage() {
  useDocumentTitle('Advertising');
  const { me, can } = useSession();
  const role = me?.role;
  const admin = role === 'admin';
  return (
    <>
      <PageHeader title="Advertising" eyebrow={humanize(role ?? '')} lead="Campaigns, the show schedule and reports, live." />
      {(admin || role === 'seller') && <SellerPipeline />}
      {(admin || role === 'producer') && <ScheduleCalendar />}
      {role === 'talent' && (
        <>
          <TalentAssignments />
          <AvailabilityEditor />
        </>
      )}
      {role === 'client' && <ClientReports />}
      {!admin && !can('campaigns_read') && !can('shows_read') && <EmptyState icon="info" title="Nothing here for your role" />}
    </>
  );
}

/** Seller pipeline: campaigns by status with their budgets. */
function SellerPipeline() {
  const toast = useToast();
  const [items, setItems] = useState<Campaign[] | null>(null);
  const load = useCallback(async () => {
    try {
      setItems(await listCampaigns());
    } catch (err) {
      toast.error(err, 'The campaigns could not be loaded');
      setItems((x) => x ?? []);
    }
  }, [toast]);
  useEffect(() => {
    void load();
  }, [load]);
  const { me } = useSession();
  // Admins hear every change on `ads`; sellers on their campaigns' topics and their own (added
  // to a team).
  useLiveReload(['ads', ...(me ? [`user:${me.id}`] : []), ...(items ?? []).map((c) => `campaign:${c.id}`)], () => void load());
  if (items === null) return <Loading />;
  return (
    <section aria-labelledby="pipeline" className="ads-section">
      <div className="section-head">
        <h2 id="pipeline">Pipeline</h2>
        <Link className="button button-secondary button-small" to="/ads/campaigns">
          All campaigns
        </Link>
      </div>
      <div className="pipeline" data-testid="pipeline">
        {CAMPAIGN_STATUSES.map((s) => {
          const col = items.filter((c) => c.status === s);
          return (
            <div key={s} className="card pipeline-col" data-status={s}>
              <h3>
                {humanize(s)} <span className="muted small">{col.length}</span>
              </h3>
              <p className="small muted">{money(col.reduce((n, c) => n + c.budget_cents, 0))} budget</p>
              <ul>
                {col.map((c) => (
                  <li key={c.id}>
                    <Link to={`/ads/campaigns/${c.id}`}>{c.name}</Link>
                    <span className="muted small"> {money(c.budget_cents)}</span>
                  </li>
                ))}
              </ul>
            </div>
          );
        })}
      </div>
    </section>
  );
}

function monthDays(month: string): string[] {
  const [y, m] = month.split('-').map(Number) as [number, number];
  const n = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return Array.from({ length: n }, (_, i) => `${month}-${String(i + 1).padStart(2, '0')}`);
}

/** Producer's schedule: a month of episodes by air date. */
export function ScheduleCalendar() {
  const toast = useToast();
  const [month, setMonth] = useState(() => new Date().toISOString().slice(0, 7));
  const [episodes, setEpisodes] = useState<Episode[] | null>(null);
  const [shows, setShows] = useState<Show[]>([]);
  const days = useMemo(() => monthDays(month), [month]);
  const load = useCallback(async () => {
    try {
      const [eps, sh] = await Promise.all([listEpisodes({ from: days[0], to: days[days.length - 1] }), listShows()]);
      setEpisodes(eps);
      setShows(sh);
    } catch (err) {
      toast.error(err, 'The schedule could not be loaded');
      setEpisodes((x) => x ?? []);
    }
  }, [days, toast]);
  useEffect(() => {
    void load();
  }, [load]);
  useLiveReload(['ads', ...shows.map((s) => `show:${s.id}`)], () => void load(), (e) => e.type.startsWith('episode.') || e.type.startsWith('show.'));
  const shift = (d: number) => {
    const [y, m] = month.split('-').map(Number) as [number, number];
    const t = new Date(Date.UTC(y, m - 1 + d, 1));
    setMonth(t.toISOString().slice(0, 7));
  };
  const first = new Date(`${days[0]}T00:00:00Z`).getUTCDay();
  const showName = (id: string) => shows.find((s) => s.id === id)?.name ?? '';
  return (
    <section aria-labelledby="schedule" className="ads-section">
      <div className="section-head">
        <h2 id="schedule">Schedule</h2>
        <div className="row-actions">
          <button type="button" className="button button-ghost button-small" onClick={() => shift(-1)} aria-label="Previous month">
            ‹
          </button>
          <strong data-testid="calendar-month">{month}</strong>
          <button type="button" className="button button-ghost button-small" onClick={() => shift(1)} aria-label="Next month">
            ›
          </button>
          <Link className="button button-secondary button-small" to="/ads/shows">
            Shows and episodes
          </Link>
        </div>
      </div>
      {episodes === null ? (
        <Loading />
      ) : (
        <div className="calendar" role="group" aria-label={`Episodes in ${month}`}>
          {['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].map((d) => (
            <div key={d} className="calendar-head" aria-hidden="true">
              {d}
            </div>
          ))}
          {Array.from({ length: first }, (_, i) => (
            <div key={`pad${i}`} className="calendar-day calendar-pad" />
          ))}
          {days.map((d) => {
            const eps = episodes.filter((e) => e.air_date === d);
            return (
              <div key={d} className="calendar-day" data-date={d}>
                <span className="calendar-num">{Number(d.slice(8))}</span>
                {eps.map((e) => (
                  <span key={e.id} className={`calendar-ep ep-${e.status}`} title={`${showName(e.show_id)}: ${e.title} (${e.status})`}>
                    {e.title}
                  </span>
                ))}
              </div>
            );
          })}
        </div>
      )}
    </section>
  );
}

/** Talent: the episodes they are assigned to. */
function TalentAssignments() {
  const toast = useToast();
  const [items, setItems] = useState<Episode[] | null>(null);
  const [shows, setShows] = useState<Show[]>([]);
  const load = useCallback(async () => {
    try {
      const [eps, sh] = await Promise.all([listEpisodes(), listShows()]);
      setItems(eps);
      setShows(sh);
    } catch (err) {
      toast.error(err, 'Your episodes could not be loaded');
      setItems((x) => x ?? []);
    }
  }, [toast]);
  useEffect(() => {
    void load();
  }, [load]);
  const { me } = useSession();
  useLiveReload(me ? [`user:${me.id}`] : [], () => void load(), (e) => e.type === 'notification');
  return (
    <section aria-labelledby="assignments" className="ads-section">
      <h2 id="assignments">Your episodes</h2>
      {items === null ? (
        <Loading />
      ) : items.length === 0 ? (
        <EmptyState icon="play" title="No episodes assigned to you yet" />
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th>Episode</th>
              <th>Show</th>
              <th>Records</th>
              <th>Airs</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            {items.map((e) => (
              <tr key={e.id}>
                <td>{e.title}</td>
                <td>{shows.find((s) => s.id === e.show_id)?.name}</td>
                <td>{e.record_date ?? '—'}</td>
                <td>{e.air_date ?? '—'}</td>
                <td>
                  <StatusPill status={e.status} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** Client: its campaigns' reports and its billing. */
function ClientReports() {
  const toast = useToast();
  const [clients, setClients] = useState<AdClient[]>([]);
  const [reports, setReports] = useState<CampaignReport[] | null>(null);
  const [billing, setBilling] = useState<ClientBilling | null>(null);
  const load = useCallback(async () => {
    try {
      const [cl, campaigns] = await Promise.all([listClients(), listCampaigns()]);
      setClients(cl);
      setReports(await Promise.all(campaigns.map((c) => getReport(c.id))));
      if (cl[0]) setBilling(await getBilling(cl[0].id));
    } catch (err) {
      toast.error(err, 'Your reports could not be loaded');
      setReports((x) => x ?? []);
    }
  }, [toast]);
  useEffect(() => {
    void load();
  }, [load]);
  useLiveReload(clients.map((c) => `client:${c.id}`), () => void load());
  if (reports === null) return <Loading />;
  return (
    <>
      <section aria-labelledby="reports" className="ads-section">
        <h2 id="reports">Campaign reports</h2>
        {reports.length === 0 ? (
          <EmptyState icon="chart" title="No campaigns yet" />
        ) : (
          reports.map((r) => <ReportCard key={r.campaign_id} report={r} />)
        )}
      </section>
      {billing && (
        <section aria-labelledby="billing" className="ads-section">
          <h2 id="billing">Billing</h2>
          <BillingTable billing={billing} />
        </section>
      )}
    </>
  );
}

/** A campaign's report: budget against booked and delivered, per show and episode. */
export function ReportCard({ report: r, link = true }: { report: CampaignReport; link?: boolean }) {
  const spentPct = r.budget_cents > 0 ? Math.min(100, Math.round((r.spend_cents / r.budget_cents) * 100)) : 0;
  return (
    <article className="card report" data-campaign={r.name} aria-label={`Report of ${r.name}`}>
      <div className="section-head">
        <h3>{link ? <Link to={`/ads/campaigns/${r.campaign_id}`}>{r.name}</Link> : r.name}</h3>
        <StatusPill status={r.status} />
      </div>
      <div className="stats">
        <Stat label="Budget" value={money(r.budget_cents)} testId="report-budget" />
        <Stat label="Booked" value={money(r.booked_cents)} sub={plural(r.booked_spots, 'spot')} testId="report-booked" />
        <Stat label="Delivered" value={money(r.spend_cents)} sub={plural(r.delivered_spots, 'spot')} testId="report-spend" />
        <Stat label="Remaining" value={money(r.remaining_cents)} testId="report-remaining" />
      </div>
      <div className="meter" role="meter" aria-label="Budget spent" aria-valuemin={0} aria-valuemax={100} aria-valuenow={spentPct}>
        <span style={{ width: `${spentPct}%` }} />
      </div>
      {r.episodes.length > 0 && (
        <table className="table">
          <thead>
            <tr>
              <th>Show</th>
              <th>Episode</th>
              <th>Airs</th>
              <th>Spots</th>
              <th>Booked</th>
              <th>Delivered</th>
            </tr>
          </thead>
          <tbody>
            {r.episodes.map((e) => (
              <tr key={e.episode_id}>
                <td>{e.show_name}</td>
                <td>{e.episode_title}</td>
                <td>{e.air_date ?? '—'}</td>
                <td>{e.booked_spots}</td>
                <td>{money(e.booked_cents)}</td>
                <td>{money(e.delivered_cents)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </article>
  );
}
