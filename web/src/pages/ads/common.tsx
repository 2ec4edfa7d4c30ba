// Pieces shared by the advertising pages: people's names, money, the activity timeline, the
// notifications bell and presence on a page.

import { createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from 'react';
import { Link } from 'react-router';
import { useSession } from '../../auth/session';
import { Icon } from '../../components/Icons';
import { useToast } from '../../components/Toasts';
import { formatAgo, formatDateTime, humanize } from '../../lib/format';
import { liveEvents, useEvents, type LiveEvent } from '../../live/events';
import {
  listActivities,
  listNotifications,
  listPeople,
  markNotificationRead,
  markNotificationsRead,
  type Activity,
  type Notification,
  type Person,
} from './api';

// ---- people ---------------------------------------------------------------------------------

const PeopleContext = createContext<Person[]>([]);

/** Loads the workspace's people once for every page under it. */
export function PeopleProvider({ children }: { children: ReactNode }) {
  const [people, setPeople] = useState<Person[]>([]);
  useEffect(() => {
    listPeople()
      .then(setPeople)
      .catch(() => setPeople([]));
  }, []);
  return <PeopleContext.Provider value={people}>{children}</PeopleContext.Provider>;
}

export function usePeople(): Person[] {
  return useContext(PeopleContext);
}

/** A person's name for display: display name, e-mail, or a short id when unknown. */
export function useName(): (id: string | null | undefined) => string {
  const people = usePeople();
  const { me } = useSession();
  return useCallback(
    (id) => {
      if (!id) return 'Someone';
      const p = people.find((x) => x.id === id);
      if (p) {
        if (!p.display_name) return p.email;
        // Two people with the same display name are told apart by their address.
        const twin = people.some((x) => x.id !== p.id && x.display_name === p.display_name);
        return twin ? `${p.display_name} (${p.email})` : p.display_name;
      }
      if (me && me.id === id) return me.display_name || me.email;
      return `User ${id.slice(0, 6)}`;
    },
    [people, me],
  );
}

// ---- formats --------------------------------------------------------------------------------

const MONEY = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });

export function money(cents: number | null | undefined): string {
  return MONEY.format((cents ?? 0) / 100);
}

/** Dollars typed in a form to cents; NaN for anything else. */
export function toCents(dollars: string): number {
  const v = Number(dollars.replace(/[$,\s]/g, ''));
  return Number.isFinite(v) ? Math.round(v * 100) : NaN;
}

export const CAMPAIGN_STATUSES = ['draft', 'active', 'paused', 'completed', 'cancelled'] as const;
export const EPISODE_STATUSES = ['draft', 'scheduled', 'recorded', 'published'] as const;

const STATUS_BADGE: Record<string, string> = {
  active: 'badge-ok',
  published: 'badge-ok',
  paused: 'badge-warn',
  scheduled: 'badge-info',
  recorded: 'badge-info',
  cancelled: 'badge-bad',
};

export function StatusPill({ status }: { status: string }) {
  return <span className={`badge ${STATUS_BADGE[status] ?? 'badge-neutral'}`}>{humanize(status)}</span>;
}

// ---- live refresh ---------------------------------------------------------------------------

/**
 * Calls `reload` when anything changes on `topics` (ad events, a resync); presence events are
 * left out. Bursts are folded into one reload.
 */
export function useLiveReload(topics: readonly string[], reload: () => void, filter?: (e: LiveEvent) => boolean) {
  const timer = useRef(0);
  useEvents(topics, (e) => {
    if (e.type === 'presence') return;
    if (filter && e.type !== 'resync' && !filter(e)) return;
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(reload, 150);
  });
  useEffect(() => () => window.clearTimeout(timer.current), []);
}

// ---- presence -------------------------------------------------------------------------------

export interface Present {
  user_id: string;
  state: string;
  since?: string;
}

/**
 * Announces the caller on `topic` (`viewing`, or `editing` while `editing` is true) and answers
 * who is there, from the topic's `presence` events.
 */
export function usePresence(topic: string | null, editing: boolean): Present[] {
  const [present, setPresent] = useState<Present[]>([]);
  useEvents(topic ? [topic] : [], (e) => {
    if (e.type !== 'presence') return;
    const list = (e.data as { present?: Present[] }).present;
    if (Array.isArray(list)) setPresent(list);
  });
  useEffect(() => {
    if (!topic) return;
    liveEvents.setPresence(topic, editing ? 'editing' : 'viewing');
  }, [topic, editing]);
  useEffect(() => {
    if (!topic) return;
    return () => liveEvents.setPresence(topic, null);
  }, [topic]);
  return present;
}

export function PresenceBar({ present }: { present: Present[] }) {
  const name = useName();
  const { me } = useSession();
  // One entry per person: editing wins over viewing when they have two tabs open.
  const people = new Map<string, string>();
  for (const p of present) {
    if (people.get(p.user_id) !== 'editing') people.set(p.user_id, p.state);
  }
  return (
    <div className="presence" aria-label="Who is here" role="group" data-testid="presence">
      <Icon name="users" size={16} />
      {people.size === 0 ? (
        <span className="muted small">Only you</span>
      ) : (
        [...people].map(([id, state]) => (
          <span key={id} className={`presence-chip presence-${state}`} data-user={id} data-state={state}>
            <span className="presence-dot" aria-hidden="true" />
            {me?.id === id ? 'You' : name(id)} <span className="muted small">{state}</span>
          </span>
        ))
      )}
    </div>
  );
}

// ---- activity timeline ----------------------------------------------------------------------

function describe(a: Activity): string {
  const after = (a.after ?? {}) as Record<string, unknown>;
  const before = (a.before ?? {}) as Record<string, unknown>;
  if (a.action === 'updated' && a.before && a.after) {
    const changed = Object.keys(after).filter(
      (k) => !['version', 'updated_at', 'created_at'].includes(k) && JSON.stringify(after[k]) !== JSON.stringify(before[k]),
    );
    if (changed.length) return `changed ${changed.map(humanize).join(', ').toLowerCase()}`;
  }
  if (a.action === 'placement_added') return `booked a ${String(after['position'] ?? '')}-roll on ${String(after['episode_title'] ?? 'an episode')}`;
  if (a.action === 'placement_removed')
    return `cancelled a ${String(before['position'] ?? '')}-roll on ${String(before['episode_title'] ?? 'an episode')}`;
  return humanize(a.action).toLowerCase();
}

/** The activity of one entity, newest first, refreshed live. */
export function ActivityTimeline({ entityType, entityId }: { entityType: string; entityId: string }) {
  const [items, setItems] = useState<Activity[] | null>(null);
  const name = useName();
  const load = useCallback(async () => {
    try {
      setItems(await listActivities({ entity_type: entityType, entity_id: entityId }));
    } catch {
      setItems((x) => x ?? []);
    }
  }, [entityType, entityId]);
  useEffect(() => {
    void load();
  }, [load]);
  useLiveReload([`${entityType}:${entityId}`], () => void load());
  return (
    <section className="card" aria-labelledby={`activity-${entityId}`}>
      <h2 id={`activity-${entityId}`}>Activity</h2>
      {items === null ? (
        <p className="muted">Loading…</p>
      ) : items.length === 0 ? (
        <p className="muted">Nothing yet.</p>
      ) : (
        <ol className="activity-timeline" aria-label="Activity timeline">
          {items.map((a) => (
            <li key={a.id} data-action={a.action}>
              <strong>{name(a.actor_id)}</strong> {describe(a)}{' '}
              <time className="muted small" dateTime={a.created_at} title={formatDateTime(a.created_at)}>
                {formatAgo(a.created_at)}
              </time>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

// ---- notifications bell ---------------------------------------------------------------------

function notificationLink(n: Notification): string | null {
  const [kind, id] = n.subject.split(':');
  if (!id) return null;
  if (kind === 'campaign') return `/ads/campaigns/${id}`;
  if (kind === 'episode') return '/ads/shows';
  return null;
}

/** The bell in the top bar: unread count, the latest notifications, mark read, all read. */
export function NotificationBell() {
  const { me } = useSession();
  const toast = useToast();
  const [items, setItems] = useState<Notification[]>([]);
  const [open, setOpen] = useState(false);
  const ref = useRef<HTMLDivElement>(null);

  const load = useCallback(async () => {
    try {
      setItems((await listNotifications()).items);
    } catch {
      // the bell stays as it was
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  useEvents(me ? [`user:${me.id}`] : [], (e) => {
    if (e.type === 'notification') {
      const n = e.data as unknown as Notification;
      setItems((xs) => [n, ...xs.filter((x) => x.id !== n.id)].slice(0, 30));
    } else if (e.type === 'resync') void load();
  });
  useEffect(() => {
    if (!open) return;
    const onDown = (e: MouseEvent) => {
      if (!ref.current?.contains(e.target as Node)) setOpen(false);
    };
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && setOpen(false);
    document.addEventListener('mousedown', onDown);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('mousedown', onDown);
      document.removeEventListener('keydown', onKey);
    };
  }, [open]);

  const unread = items.filter((n) => !n.read_at);
  async function read(n: Notification) {
    try {
      await markNotificationRead(n.id);
      setItems((xs) => xs.map((x) => (x.id === n.id ? { ...x, read_at: new Date().toISOString() } : x)));
    } catch (err) {
      toast.error(err, 'The notification could not be marked read');
    }
  }
  async function readAll() {
    try {
      await markNotificationsRead({ all: true });
      const now = new Date().toISOString();
      setItems((xs) => xs.map((x) => ({ ...x, read_at: x.read_at ?? now })));
    } catch (err) {
      toast.error(err, 'The notifications could not be marked read');
    }
  }

  return (
    <div className="bell" ref={ref}>
      <button
        type="button"
        className="button button-ghost button-icon bell-button"
        aria-label={`Notifications, ${unread.length} unread`}
        aria-expanded={open}
        onClick={() => setOpen((v) => !v)}
        data-testid="bell"
      >
        <Icon name="bell" />
        {unread.length > 0 && (
          <span className="bell-count" data-testid="bell-count">
            {unread.length}
          </span>
        )}
      </button>
      {open && (
        <div className="bell-panel" role="region" aria-label="Notifications">
          <div className="bell-head">
            <strong>Notifications</strong>
            <button type="button" className="button button-ghost button-small" disabled={unread.length === 0} onClick={readAll}>
              Mark all read
            </button>
          </div>
          {items.length === 0 ? (
            <p className="muted small">Nothing yet.</p>
          ) : (
            <ul className="bell-list">
              {items.map((n) => {
                const to = notificationLink(n);
                return (
                  <li key={n.id} className={n.read_at ? 'read' : 'unread'} data-kind={n.kind}>
                    {to ? (
                      <Link to={to} onClick={() => setOpen(false)}>
                        {n.title}
                      </Link>
                    ) : (
                      <span>{n.title}</span>
                    )}
                    <span className="muted small"> · {formatAgo(n.created_at)}</span>
                    {!n.read_at && (
                      <button type="button" className="button button-ghost button-small" onClick={() => read(n)} aria-label={`Mark “${n.title}” read`}>
                        Mark read
                      </button>
                    )}
                  </li>
                );
              })}
            </ul>
          )}
        </div>
      )}
    </div>
  );
}
