import { useEffect, useState, type FormEvent } from 'react';
import { createApiToken, listApiTokens, listUsers, revokeApiToken } from '../../api/endpoints';
import type { ApiToken, ApiTokenCreated, CreateApiTokenBody, User } from '../../api/types';
import { Loading } from '../../auth/RequireAuth';
import { useSession } from '../../auth/session';
import { Field, useFieldErrors } from '../../components/Form';
import { Icon } from '../../components/Icons';
import { useToast } from '../../components/Toasts';
import { CopyField, EmptyState, Modal, PageHeader } from '../../components/ui';
import { formatAgo, formatDateTime, humanize } from '../../lib/format';
import { useDocumentTitle } from '../../useDocumentTitle';

function CreateTokenForm({ users, onCreated }: { users: User[]; onCreated: (t: ApiTokenCreated) => void }) {
  const { me, can } = useSession();
  const mine = me?.permissions ?? [];
  const [name, setName] = useState('');
  const [perms, setPerms] = useState<Set<string>>(new Set(mine.filter((p) => p.startsWith('channels'))));
  const [days, setDays] = useState('90');
  const [holder, setHolder] = useState('');
  const [pending, setPending] = useState(false);
  const { errors, clear, report } = useFieldErrors(['name', 'permissions', 'expires_in_days', 'user_id'] as const);

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    setPending(true);
    clear();
    try {
      const body: CreateApiTokenBody = { name: name.trim(), permissions: [...perms] };
      if (days) body.expires_in_days = Number(days);
      if (holder) body.user_id = holder;
      onCreated(await createApiToken(body));
    } catch (err) {
      report(err, 'The token was not created');
    } finally {
      setPending(false);
    }
  }

  return (
    <form className="form" onSubmit={onSubmit} noValidate>
      <Field label="Name" error={errors.name} hint="What uses it, e.g. “CI deploy” or “Camera importer”.">
        {(p) => <input {...p} value={name} autoFocus maxLength={100} onChange={(e) => (setName(e.target.value), clear('name'))} />}
      </Field>
      {can('users_manage') && users.length > 0 && (
        <Field label="Holder" error={errors.user_id} hint="Tokens act as their holder. API-only accounts get their tokens here.">
          {(p) => (
            <select {...p} value={holder} onChange={(e) => (setHolder(e.target.value), clear('user_id'))}>
              <option value="">Me ({me?.email})</option>
              {users
                .filter((u) => u.id !== me?.id && u.status === 'active')
                .map((u) => (
                  <option key={u.id} value={u.id}>
                    {u.email} ({humanize(u.role)})
                  </option>
                ))}
            </select>
          )}
        </Field>
      )}
      <fieldset className="check-group">
        <legend>Permissions</legend>
        <p className="hint">A token can do at most what its holder can.</p>
        <div className="check-grid">
          {mine.map((p) => (
            <label key={p} className="check">
              <input
                type="checkbox"
                checked={perms.has(p)}
                onChange={(e) =>
                  setPerms((s) => {
                    const n = new Set(s);
                    if (e.target.checked) n.add(p);
                    else n.delete(p);
                    return n;
                  })
                }
              />
              <span>{humanize(p)}</span>
            </label>
          ))}
        </div>
        {errors.permissions && <p className="field-error">{errors.permissions}</p>}
      </fieldset>
      <Field label="Expires" error={errors.expires_in_days}>
        {(p) => (
          <select {...p} value={days} onChange={(e) => (setDays(e.target.value), clear('expires_in_days'))}>
            <option value="7">In 7 days</option>
            <option value="30">In 30 days</option>
            <option value="90">In 90 days</option>
            <option value="365">In a year</option>
            <option value="">Never</option>
          </select>
        )}
      </Field>
      <div className="form-actions">
        <button type="submit" className="button button-primary" disabled={pending}>
          {pending ? 'Creating…' : 'Create token'}
        </button>
      </div>
    </form>
  );
}

export function ApiTokensPage() {
  useDocumentTitle('API tokens');
  const toast = useToast();
  const { can } = useSession();
  const [items, setItems] = useState<ApiToken[] | null>(null);
  const [users, setUsers] = useState<User[]>([]);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<ApiTokenCreated | null>(null);
  const [revoking, setRevoking] = useState<ApiToken | null>(null);

  useEffect(() => {
    const ctrl = new AbortController();
    listApiTokens(ctrl.signal)
      .then((l) => setItems(l.items))
      .catch((err) => {
        if (!ctrl.signal.aborted) {
          toast.error(err, 'Tokens could not be loaded');
          setItems([]);
        }
      });
    if (can('users_manage')) {
      listUsers({ limit: 200 }, ctrl.signal)
        .then((l) => setUsers(l.items))
        .catch(() => {});
    }
    return () => ctrl.abort();
  }, [toast, can]);

  const userName = (id: string) => users.find((u) => u.id === id)?.email ?? 'You';

  return (
    <>
      <PageHeader
        title="API tokens"
        lead="Bearer tokens for scripts and integrations. A token is shown in full once, when it is created."
        actions={
          <button type="button" className="button button-primary" onClick={() => setCreating(true)}>
            <Icon name="plus" /> New token
          </button>
        }
      />
      {items === null ? (
        <Loading />
      ) : items.length === 0 ? (
        <EmptyState icon="key" title="No API tokens">
          Create one for each script or integration, with only the permissions it needs.
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <caption className="visually-hidden">API tokens</caption>
            <thead>
              <tr>
                <th scope="col">Token</th>
                <th scope="col">Holder</th>
                <th scope="col">Permissions</th>
                <th scope="col">Last used</th>
                <th scope="col">Expires</th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((t) => (
                <tr key={t.id} className={t.status === 'active' ? '' : 'is-disabled'}>
                  <td>
                    <strong>{t.name}</strong>
                    <span className="muted small mono block">{t.token_masked}</span>
                  </td>
                  <td className="small">{userName(t.user_id)}</td>
                  <td className="small">{t.permissions.map(humanize).join(', ')}</td>
                  <td className="nowrap">{formatAgo(t.last_used_at)}</td>
                  <td className="nowrap">{t.expires_at ? formatDateTime(t.expires_at) : 'Never'}</td>
                  <td>
                    <span className={`badge ${t.status === 'active' ? 'badge-ok' : 'badge-neutral'}`}>
                      <span className="badge-dot" aria-hidden="true" />
                      {humanize(t.status)}
                    </span>
                  </td>
                  <td>
                    {t.status === 'active' && (
                      <button type="button" className="button button-ghost button-small danger-text" onClick={() => setRevoking(t)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <Modal open={creating} onClose={() => setCreating(false)} title="New API token">
        {creating && (
          <CreateTokenForm
            users={users}
            onCreated={(t) => {
              setCreating(false);
              setCreated(t);
              setItems((all) => [t, ...(all ?? [])]);
            }}
          />
        )}
      </Modal>

      <Modal
        open={created !== null}
        onClose={() => setCreated(null)}
        title="Token created"
        footer={
          <button type="button" className="button button-primary" onClick={() => setCreated(null)}>
            I have stored it
          </button>
        }
      >
        {created && (
          <>
            <CopyField label="Token" value={created.token} secret hint="Shown only now. Send it as “Authorization: Bearer …”." />
          </>
        )}
      </Modal>

      <Modal
        open={revoking !== null}
        onClose={() => setRevoking(null)}
        title="Revoke token?"
        footer={
          <>
            <button type="button" className="button button-ghost" onClick={() => setRevoking(null)}>
              Cancel
            </button>
            <button
              type="button"
              className="button button-danger"
              onClick={async () => {
                const t = revoking;
                setRevoking(null);
                if (!t) return;
                try {
                  await revokeApiToken(t.id);
                  setItems((all) => (all ?? []).map((x) => (x.id === t.id ? { ...x, status: 'revoked' } : x)));
                  toast.success(`“${t.name}” revoked`);
                } catch (err) {
                  toast.error(err);
                }
              }}
            >
              Revoke
            </button>
          </>
        }
      >
        <p>Anything using “{revoking?.name}” stops working at once.</p>
      </Modal>
    </>
  );
}
