import { Icon, type IconName } from '../components/Icons';
import { useDocumentTitle } from '../useDocumentTitle';

/** A section whose server API is not there yet: says what it will do and what it waits for. */
export function SoonPage({
  title,
  icon,
  summary,
  comingWith,
}: {
  title: string;
  icon: IconName;
  summary: string;
  /** What the screen waits for, e.g. "the presets API" or "the next console release". */
  comingWith: string;
}) {
  useDocumentTitle(title);
  return (
    <section className="placeholder placeholder-left" aria-labelledby="soon-heading">
      <span className="placeholder-icon" aria-hidden="true">
        <Icon name={icon} size={30} />
      </span>
      <h1 id="soon-heading">{title}</h1>
      <p className="lead">{summary}</p>
      <p className="soon-note">
        <Icon name="info" size={16} /> Coming with {comingWith}.
      </p>
    </section>
  );
}
