// Placeholder for the live chat panel of the player page; part B of issue 11 replaces this file.
export function ChatPanel({ streamId }: { streamId: string }) {
  return <aside className="watch-chat" data-stream={streamId} aria-label="Live chat" />;
}
