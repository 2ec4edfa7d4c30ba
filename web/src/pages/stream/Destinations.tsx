import { useEffect, useState } from 'react';
import { deleteDestination, listDestinations, updateDestination } from '../../api/endpoints';
import type { Destination } from '../../api/types';
import { Loading } from '../../auth/RequireAuth';
import { Icon } from '../../components/Icons';
import { useToast } from '../../components/Toasts';
import { EmptyState, Modal, PageHeader } from '../../components/ui';
import { platform } from '../../lib/platforms';
import { useDocumentTitle } from '../../useDocumentTitle';
import { DestinationForm, PlatformMark, TestConnection } from './DestinationForm';

/** The multi-destination panel: every destination with its platform, key (masked) and a test. */
export function DestinationsPage() {
  useDocumentTitle('Destinations');
  const toast = useToast();
  const [items, setItems] = useState<Destination[] | null>(null);
  const [editing, setEditing] = useState<Destination | 'new' | null>(null);
  const [deleting, setDeleting] = useState<Destination | null>(null);

  useEffect(() => {
    const ctrl = new AbortController();
    listDestinations(ctrl.signal)
      .then((l) => setItems(l.items))
      .catch((err) => {
        if (!ctrl.signal.aborted) {
          toast.error(err, 'Destinations could not be loaded');
          setItems([]);
        }
      });
    return () => ctrl.abort();
  }, [toast]);

  const replace = (d: Destination) =>
    setItems((all) => {
      const list = all ?? [];
      return list.some((x) => x.id === d.id) ? list.map((x) => (x.id === d.id ? d : x)) : [...list, d];
    });

  return (
    <>
      <PageHeader
        title="Destinations"
        lead="Platforms and servers your channels can go live on. Stream keys are stored encrypted and shown masked."
        actions={
          <button type="button" className="button button-primary" onClick={() => setEditing('new')}>
            <Icon name="plus" /> Add destination
          </button>
        }
      />
      {items === null ? (
        <Loading />
      ) : items.length === 0 ? (
        <EmptyState
          icon="send"
          title="No destinations yet"
          action={
            <button type="button" className="button button-primary" onClick={() => setEditing('new')}>
              Add your first destination
            </button>
          }
        >
          Add YouTube Live, X, LinkedIn Live or any RTMP(S) server.
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <caption className="visually-hidden">Destinations</caption>
            <thead>
              <tr>
                <th scope="col">Destination</th>
                <th scope="col">Server</th>
                <th scope="col">Key</th>
                <th scope="col">Starts with session</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((d) => (
                <tr key={d.id} className={d.enabled ? '' : 'is-disabled'}>
                  <td>
                    <div className="cell-with-mark">
                      <PlatformMark id={d.platform} size="small" />
                      <div>
                        <strong>{d.name}</strong>
                        <span className="muted small block">
                          {platform(d.platform).name}
                          {!d.enabled && ' · disabled'}
                        </span>
                      </div>
                    </div>
                  </td>
                  <td className="mono small break">{d.rtmp_url}</td>
                  <td className="mono small">{d.stream_key_masked}</td>
                  <td>
                    <label className="switch">
                      <input
                        type="checkbox"
                        checked={d.auto_start}
                        aria-label={`Start ${d.name} with every session`}
                        onChange={async (e) => {
                          try {
                            replace(await updateDestination(d.id, { auto_start: e.target.checked }));
                          } catch (err) {
                            toast.error(err);
                          }
                        }}
                      />
                      <span aria-hidden="true" />
                    </label>
                  </td>
                  <td>
                    <div className="row-actions">
                      <TestConnection destination={d} />
                      <button type="button" className="button button-ghost button-small" onClick={() => setEditing(d)} aria-label={`Edit ${d.name}`}>
                        <Icon name="edit" size={16} /> Edit
                      </button>
                      <button type="button" className="button button-ghost button-small danger-text" onClick={() => setDeleting(d)} aria-label={`Delete ${d.name}`}>
                        <Icon name="trash" size={16} />
                      </button>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <Modal
        open={editing !== null}
        onClose={() => setEditing(null)}
        title={editing === 'new' ? 'Add destination' : `Configure ${editing?.name ?? ''}`}
        wide
      >
        {editing !== null && (
          <>
            <DestinationForm
              existing={editing === 'new' ? undefined : editing}
              onSaved={(d) => {
                replace(d);
                toast.success(editing === 'new' ? `${d.name} added` : `${d.name} saved`);
                setEditing(null);
              }}
              onCancel={() => setEditing(null)}
            />
            {editing !== 'new' && (
              <div className="modal-section">
                <TestConnection destination={editing} />
              </div>
            )}
          </>
        )}
      </Modal>

      <Modal
        open={deleting !== null}
        onClose={() => setDeleting(null)}
        title="Delete destination?"
        footer={
          <>
            <button type="button" className="button button-ghost" onClick={() => setDeleting(null)}>
              Cancel
            </button>
            <button
              type="button"
              className="button button-danger"
              onClick={async () => {
                const d = deleting;
                setDeleting(null);
                if (!d) return;
                try {
                  await deleteDestination(d.id);
                  setItems((all) => (all ?? []).filter((x) => x.id !== d.id));
                  toast.success(`${d.name} deleted`);
                } catch (err) {
                  toast.error(err);
                }
              }}
            >
              Delete
            </button>
          </>
        }
      >
        <p>
          “{deleting?.name}” and its stored stream key are removed. If it is streaming now, it stops first.
        </p>
      </Modal>
    </>
  );
}
