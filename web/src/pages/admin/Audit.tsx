import { Fragment, useCallback, useEffect, useState, type FormEvent } from 'react';
import { useSearchParams } from 'react-router';
import { listAudit, listUsers, type AuditFilter } from '../../api/endpoints';
import type { AuditEntry, User } from '../../api/types';
import { Loading } from '../../auth/RequireAuth';
import { useSession } from '../../auth/session';
import { useToast } from '../../components/Toasts';
import { EmptyState, PageHeader } from '../../components/ui';
import { formatDateTime } from '../../lib/format';
import { useDocumentTitle } from '../../useDocumentTitle';

const FILTER_KEYS = ['actor_id', 'action', 'resource', 'result', 'since', 'until'] as const;

/** `datetime-local` value (local time) ↔ RFC 3339 (UTC). */
function toRfc3339(local: string): string | undefined {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

const RESULT_TONE: Record<string, string> = { success: 'badge-ok', failure: 'badge-bad', denied: 'badge-warn' };

export function AuditPage() {
  useDocumentTitle('Audit log');
  const toast = useToast();
  const { can } = useSession();
  const [params, setParams] = useSearchParams();
  const [users, setUsers] = useState<User[]>([]);
  const [items, setItems] = useState<AuditEntry[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [draft, setDraft] = useState<Record<string, string>>(() =>
    Object.fromEntries(FILTER_KEYS.map((k) => [k, params.get(k) ?? ''])),
  );
  const key = params.toString();

  const filter = useCallback((): AuditFilter => {
    const f: AuditFilter = {};
    for (const k of FILTER_KEYS) {
      const v = params.get(k);
      if (!v) continue;
      if (k === 'since' || k === 'until') {
        const iso = toRfc3339(v);
        if (iso) f[k] = iso;
      } else f[k] = v;
    }
    return f;
  }, [key]);

  const load = useCallback(
    async (after?: string, signal?: AbortSignal) => {
      const page = await listAudit({ ...filter(), cursor: after, limit: 50 }, signal);
      setItems((all) => (after ? [...(all ?? []), ...page.items] : page.items));
      setCursor(page.next_cursor ?? null);
    },
    [filter],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    setItems(null);
    load(undefined, ctrl.signal).catch((err) => {
      if (ctrl.signal.aborted) return;
      toast.error(err, 'The audit log could not be loaded');
      setItems([]);
    });
    return () => ctrl.abort();
  }, [load, toast]);

  useEffect(() => {
    if (!can('users_manage')) return;
    const ctrl = new AbortController();
    listUsers({ limit: 200 }, ctrl.signal)
      .then((l) => setUsers(l.items))
      .catch(() => {});
    return () => ctrl.abort();
  }, [can]);

  const who = (id: string | null | undefined) => (id ? (users.find((u) => u.id === id)?.email ?? `${id.slice(0, 8)}…`) : 'Anonymous');

  function apply(e: FormEvent) {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const k of FILTER_KEYS) if (draft[k]) next.set(k, draft[k]!);
    setParams(next);
  }

  const set = (k: string) => (e: { target: { value: string } }) => setDraft((d) => ({ ...d, [k]: e.target.value }));

  return (
    <>
      <PageHeader title="Audit log" lead="Every change and every refused attempt, with who, from where and what happened." />
      <form className="filters card" onSubmit={apply} aria-label="Filter the audit log">
        <label>
          <span>User</span>
          <select value={draft.actor_id} onChange={set('actor_id')}>
            <option value="">Anyone</option>
            {users.map((u) => (
              <option key={u.id} value={u.id}>
                {u.email}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>Action</span>
          <input value={draft.action} onChange={set('action')} placeholder="e.g. channel.create" spellCheck={false} />
        </label>
        <label>
          <span>Resource path starts with</span>
          <input value={draft.resource} onChange={set('resource')} placeholder="/api/v1/channels/" spellCheck={false} />
        </label>
        <label>
          <span>Result</span>
          <select value={draft.result} onChange={set('result')}>
            <option value="">Any</option>
            <option value="success">Success</option>
            <option value="failure">Failure</option>
            <option value="denied">Denied</option>
          </select>
        </label>
        <label>
          <span>From</span>
          <input type="datetime-local" value={draft.since} onChange={set('since')} />
        </label>
        <label>
          <span>Until</span>
          <input type="datetime-local" value={draft.until} onChange={set('until')} />
        </label>
        <div className="filters-actions">
          <button type="submit" className="button button-primary button-small">
            Apply filters
          </button>
          <button
            type="button"
            className="button button-ghost button-small"
            onClick={() => {
              setDraft(Object.fromEntries(FILTER_KEYS.map((k) => [k, ''])));
              setParams(new URLSearchParams());
            }}
          >
            Clear
          </button>
        </div>
      </form>

      {items === null ? (
        <Loading />
      ) : items.length === 0 ? (
        <EmptyState icon="list" title="Nothing matches these filters" />
      ) : (
        <>
          <div className="table-wrap">
            <table className="table audit-table">
              <caption className="visually-hidden">Audit entries</caption>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Who</th>
                  <th scope="col">Action</th>
                  <th scope="col">Resource</th>
                  <th scope="col">Result</th>
                  <th scope="col">From</th>
                </tr>
              </thead>
              <tbody>
                {items.map((e) => (
                  <Fragment key={e.id}>
                    <tr>
                      <td className="nowrap">
                        <button
                          type="button"
                          className="link-button"
                          aria-expanded={open === e.id}
                          onClick={() => setOpen((o) => (o === e.id ? null : e.id))}
                        >
                          {formatDateTime(e.created_at)}
                        </button>
                      </td>
                      <td className="small">
                        {who(e.actor_id)}
                        {e.api_token_id && <span className="muted block">via API token</span>}
                      </td>
                      <td className="mono small">{e.action}</td>
                      <td className="mono small break">
                        {e.method} {e.resource}
                      </td>
                      <td>
                        <span className={`badge ${RESULT_TONE[e.result] ?? 'badge-neutral'}`}>
                          {e.result} · {e.status}
                        </span>
                      </td>
                      <td className="mono small">{e.ip}</td>
                    </tr>
                    {open === e.id && (
                      <tr className="detail-row">
                        <td colSpan={6}>
                          <dl className="kv">
                            <dt>Request id</dt>
                            <dd className="mono">{e.request_id ?? '—'}</dd>
                            <dt>Browser / client</dt>
                            <dd>{e.user_agent || '—'}</dd>
                            {e.resource_id && (
                              <>
                                <dt>Resource id</dt>
                                <dd className="mono">{e.resource_id}</dd>
                              </>
                            )}
                            <dt>Details</dt>
                            <dd>
                              <pre className="code-block small">{e.details ? JSON.stringify(e.details, null, 2) : '—'}</pre>
                            </dd>
                          </dl>
                        </td>
                      </tr>
                    )}
                  </Fragment>
                ))}
              </tbody>
            </table>
          </div>
          {cursor && (
            <p className="center">
              <button
                type="button"
                className="button button-secondary"
                onClick={() => load(cursor).catch((err) => toast.error(err))}
              >
                Show older entries
              </button>
            </p>
          )}
        </>
      )}
    </>
  );
}
