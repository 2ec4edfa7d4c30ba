import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { request } from '../../api/client';
import {
  createInvitation,
  listInvitations,
  listUsers,
  resetUserMfa,
  revokeInvitation,
  updateUser,
} from '../../api/endpoints';
import type { Invitation, User } from '../../api/types';
import { Loading } from '../../auth/RequireAuth';
import { useSession } from '../../auth/session';
import { Field, useFieldErrors } from '../../components/Form';
import { Icon } from '../../components/Icons';
import { useToast } from '../../components/Toasts';
import { CopyField, EmptyState, Modal, PageHeader } from '../../components/ui';
import { formatAgo, formatDateTime, humanize } from '../../lib/format';
import { useDocumentTitle } from '../../useDocumentTitle';

export const STAFF_ROLES: { group: string; roles: { id: string; label: string; about: string }[] }[] = [
  {
    group: 'Streaming and cameras',
    roles: [
      { id: 'admin', label: 'Administrator', about: 'Full system access and user management' },
      { id: 'operator', label: 'Operator', about: 'Stream configuration and control' },
      { id: 'viewer', label: 'Viewer', about: 'Sees channels, changes nothing' },
      { id: 'api_only', label: 'API only', about: 'No sign-in; API tokens only' },
    ],
  },
  {
    group: 'Advertising',
    roles: [
      { id: 'seller', label: 'Seller', about: '' },
      { id: 'producer', label: 'Producer', about: '' },
      { id: 'talent', label: 'Talent', about: '' },
      { id: 'client', label: 'Client', about: '' },
    ],
  },
];

function roleLabel(id: string): string {
  for (const g of STAFF_ROLES) for (const r of g.roles) if (r.id === id) return r.label;
  return humanize(id);
}

function RoleOptions() {
  return (
    <>
      {STAFF_ROLES.map((g) => (
        <optgroup key={g.group} label={g.group}>
          {g.roles.map((r) => (
            <option key={r.id} value={r.id}>
              {r.label}
            </option>
          ))}
        </optgroup>
      ))}
    </>
  );
}

interface OutboxItem {
  kind: string;
  body: string;
  created_at?: string;
}

/** Without a mail server the invitation waits in the outbox: fetch its link for the admin. */
async function invitationLink(email: string): Promise<string | null> {
  try {
    const box = await request<{ items: OutboxItem[] }>('/api/v1/outbox', { query: { recipient: email } });
    const mail = box.items.find((m) => m.kind === 'invitation');
    const m = mail?.body.match(/https?:\/\/\S+accept-invitation\?token=[\w-]+|\/accept-invitation\?token=[\w-]+/);
    return m ? m[0] : null;
  } catch {
    return null;
  }
}

function InviteForm({ onInvited }: { onInvited: (inv: Invitation, link: string | null) => void }) {
  const { can } = useSession();
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState('operator');
  const [pending, setPending] = useState(false);
  const { errors, clear, report } = useFieldErrors(['email', 'role', 'display_name'] as const);

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    setPending(true);
    clear();
    try {
      const body: { email: string; role: string; display_name?: string } = { email: email.trim(), role };
      if (name.trim()) body.display_name = name.trim();
      const inv = await createInvitation(body);
      onInvited(inv, can('outbox_read') ? await invitationLink(inv.email) : null);
    } catch (err) {
      report(err, 'The invitation was not sent');
    } finally {
      setPending(false);
    }
  }

  return (
    <form className="form" onSubmit={onSubmit} noValidate>
      <Field label="Email" error={errors.email}>
        {(p) => (
          <input {...p} type="email" autoComplete="off" value={email} autoFocus onChange={(e) => (setEmail(e.target.value), clear('email'))} />
        )}
      </Field>
      <Field label="Name" aside={<span className="optional">optional</span>} error={errors.display_name}>
        {(p) => <input {...p} value={name} onChange={(e) => (setName(e.target.value), clear('display_name'))} />}
      </Field>
      <Field label="Role" error={errors.role} hint={STAFF_ROLES[0]!.roles.find((r) => r.id === role)?.about}>
        {(p) => (
          <select {...p} value={role} onChange={(e) => (setRole(e.target.value), clear('role'))}>
            <RoleOptions />
          </select>
        )}
      </Field>
      <div className="form-actions">
        <button type="submit" className="button button-primary" disabled={pending}>
          {pending ? 'Sending…' : 'Send invitation'}
        </button>
      </div>
    </form>
  );
}

export function UsersPage() {
  useDocumentTitle('Users');
  const toast = useToast();
  const { me } = useSession();
  const [users, setUsers] = useState<User[] | null>(null);
  const [invitations, setInvitations] = useState<Invitation[]>([]);
  const [q, setQ] = useState('');
  const [inviting, setInviting] = useState(false);
  const [invited, setInvited] = useState<{ inv: Invitation; link: string | null } | null>(null);
  const [confirm, setConfirm] = useState<{ title: string; body: string; action: string; run: () => Promise<void> } | null>(null);

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        const [u, i] = await Promise.all([listUsers({ q: q.trim() || undefined } as { q?: string }, signal), listInvitations(signal)]);
        setUsers(u.items);
        setInvitations(i.items);
      } catch (err) {
        if (!signal?.aborted) {
          toast.error(err, 'Users could not be loaded');
          setUsers((x) => x ?? []);
        }
      }
    },
    [q, toast],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    const t = window.setTimeout(() => void load(ctrl.signal), 250);
    return () => {
      ctrl.abort();
      window.clearTimeout(t);
    };
  }, [load]);

  const replace = (u: User) => setUsers((all) => (all ?? []).map((x) => (x.id === u.id ? u : x)));
  const pending = invitations.filter((i) => i.status === 'pending');

  return (
    <>
      <PageHeader
        title="Users"
        lead="Who can sign in, with which role. New people join by invitation."
        actions={
          <button type="button" className="button button-primary" onClick={() => setInviting(true)}>
            <Icon name="plus" /> Invite user
          </button>
        }
      />
      <div className="toolbar">
        <label className="search">
          <span className="visually-hidden">Search users</span>
          <input type="search" placeholder="Search by name or email" value={q} onChange={(e) => setQ(e.target.value)} />
        </label>
      </div>

      {users === null ? (
        <Loading />
      ) : users.length === 0 ? (
        <EmptyState icon="users" title={q ? 'No user matches' : 'No users'} />
      ) : (
        <div className="table-wrap">
          <table className="table">
            <caption className="visually-hidden">Users</caption>
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col">Role</th>
                <th scope="col">Status</th>
                <th scope="col">MFA</th>
                <th scope="col">Last sign-in</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {users.map((u) => {
                const self = u.id === me?.id;
                return (
                  <tr key={u.id} data-user={u.email}>
                    <td>
                      <strong>{u.display_name || u.email}</strong>
                      <span className="muted small block">{u.email}</span>
                    </td>
                    <td>
                      {self || u.realm !== 'staff' ? (
                        roleLabel(u.role)
                      ) : (
                        <select
                          aria-label={`Role of ${u.email}`}
                          value={u.role}
                          onChange={async (e) => {
                            try {
                              replace(await updateUser(u.id, { role: e.target.value }));
                              toast.success(`${u.email} is now ${roleLabel(e.target.value)}`);
                            } catch (err) {
                              toast.error(err, 'The role was not changed');
                            }
                          }}
                        >
                          <RoleOptions />
                        </select>
                      )}
                    </td>
                    <td>
                      <span className={`badge ${u.status === 'active' ? 'badge-ok' : 'badge-bad'}`}>
                        <span className="badge-dot" aria-hidden="true" />
                        {humanize(u.status)}
                      </span>
                    </td>
                    <td>{u.mfa_enabled ? <span className="ok-text">On</span> : <span className="muted">Off</span>}</td>
                    <td className="nowrap" title={formatDateTime(u.last_login_at)}>
                      {formatAgo(u.last_login_at)}
                    </td>
                    <td>
                      {!self && (
                        <div className="row-actions">
                          {u.mfa_enabled && (
                            <button
                              type="button"
                              className="button button-ghost button-small"
                              onClick={() =>
                                setConfirm({
                                  title: 'Reset two-step verification?',
                                  body: `${u.email} signs in with the password alone until they enrol a new authenticator (or must enrol at next sign-in where MFA is required).`,
                                  action: 'Reset MFA',
                                  run: async () => {
                                    await resetUserMfa(u.id);
                                    replace({ ...u, mfa_enabled: false });
                                  },
                                })
                              }
                            >
                              Reset MFA
                            </button>
                          )}
                          <button
                            type="button"
                            className={`button button-ghost button-small${u.status === 'active' ? ' danger-text' : ''}`}
                            onClick={() =>
                              u.status === 'active'
                                ? setConfirm({
                                    title: `Disable ${u.email}?`,
                                    body: 'Their sessions end at once and they cannot sign in until enabled again.',
                                    action: 'Disable',
                                    run: async () => replace(await updateUser(u.id, { disabled: true })),
                                  })
                                : void updateUser(u.id, { disabled: false })
                                    .then(replace)
                                    .catch((err) => toast.error(err))
                            }
                          >
                            {u.status === 'active' ? 'Disable' : 'Enable'}
                          </button>
                        </div>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}

      <section className="section" aria-labelledby="inv-heading">
        <h2 id="inv-heading" className="section-title">
          Pending invitations
        </h2>
        {pending.length === 0 ? (
          <p className="muted">No invitation is waiting.</p>
        ) : (
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Email</th>
                  <th scope="col">Role</th>
                  <th scope="col">Sent</th>
                  <th scope="col">Expires</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {pending.map((i) => (
                  <tr key={i.id}>
                    <td>{i.email}</td>
                    <td>{roleLabel(i.role)}</td>
                    <td>{formatAgo(i.created_at)}</td>
                    <td>{formatDateTime(i.expires_at)}</td>
                    <td>
                      <button
                        type="button"
                        className="button button-ghost button-small danger-text"
                        onClick={async () => {
                          try {
                            await revokeInvitation(i.id);
                            setInvitations((all) => all.map((x) => (x.id === i.id ? { ...x, status: 'revoked' } : x)));
                            toast.success(`Invitation to ${i.email} revoked`);
                          } catch (err) {
                            toast.error(err);
                          }
                        }}
                      >
                        Revoke
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <Modal open={inviting} onClose={() => setInviting(false)} title="Invite a user">
        {inviting && (
          <InviteForm
            onInvited={(inv, link) => {
              setInviting(false);
              setInvitations((all) => [inv, ...all]);
              setInvited({ inv, link });
            }}
          />
        )}
      </Modal>

      <Modal
        open={invited !== null}
        onClose={() => setInvited(null)}
        title="Invitation sent"
        footer={
          <button type="button" className="button button-primary" onClick={() => setInvited(null)}>
            Done
          </button>
        }
      >
        <p>
          {invited?.inv.email} was invited as {roleLabel(invited?.inv.role ?? '')}. The link works once and expires{' '}
          {formatDateTime(invited?.inv.expires_at)}.
        </p>
        {invited?.link && (
          <CopyField
            label="Invitation link"
            value={invited.link.startsWith('/') ? `${location.origin}${invited.link}` : invited.link}
            hint="No mail server is configured, so the e-mail waits in the outbox. Send this link yourself."
          />
        )}
      </Modal>

      <Modal
        open={confirm !== null}
        onClose={() => setConfirm(null)}
        title={confirm?.title ?? ''}
        footer={
          <>
            <button type="button" className="button button-ghost" onClick={() => setConfirm(null)}>
              Cancel
            </button>
            <button
              type="button"
              className="button button-danger"
              onClick={async () => {
                const c = confirm;
                setConfirm(null);
                try {
                  await c?.run();
                  toast.success('Done');
                } catch (err) {
                  toast.error(err);
                }
              }}
            >
              {confirm?.action}
            </button>
          </>
        }
      >
        <p>{confirm?.body}</p>
      </Modal>
    </>
  );
}
