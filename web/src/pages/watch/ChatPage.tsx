import { useParams } from 'react-router';
import { useDocumentTitle } from '../../useDocumentTitle';
import { ChatPanel } from './ChatPanel';

/** The chat of one stream on its own page (`/watch/{id}/chat`): a pop-out next to the player. */
export function ChatPage() {
  const { streamId = '' } = useParams();
  useDocumentTitle('Live chat');
  return (
    <main className="chat-page">
      <ChatPanel streamId={streamId} />
    </main>
  );
}
