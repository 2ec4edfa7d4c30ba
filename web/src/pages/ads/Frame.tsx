import { ConsoleLayout } from '../../components/ConsoleLayout';
import { NotificationBell, PeopleProvider } from './common';

/** The advertising app's frame: the console with the notifications bell, people loaded once. */
export function AdsFrame() {
  return (
    <PeopleProvider>
      <ConsoleLayout app="ads" topEnd={<NotificationBell />} />
    </PeopleProvider>
  );
}
