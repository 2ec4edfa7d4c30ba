import { useEffect } from 'react';

/** Sets the tab title to "<page> · Lunora" (or just "Lunora"). */
export function useDocumentTitle(page?: string): void {
  useEffect(() => {
    document.title = page ? `${page} · Lunora` : 'Lunora';
  }, [page]);
}
