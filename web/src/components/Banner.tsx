/** Tells people plainly when Starling is not working normally, and links to the status page. */
import { firstSentence, health } from '../lib/health';
import { useStore } from '../lib/store';

export function DegradedBanner() {
  const h = useStore(health);
  let message: string | null = null;
  if (h.offline) message = "You're offline. What you write is kept on this device and sent when you're back online.";
  else if (h.requestsFailing) message = "Starling can't be reached right now. What you write is kept on this device and sent when it's back.";
  else if (h.refusal) {
    // The server's own words. For a refused post, its first sentence (the rest is advice to apps) and what this app does.
    message = h.refusal.write ? `${firstSentence(h.refusal.message)} What you write is kept on this device and sent when Starling takes it.` : h.refusal.message;
  } else if (h.incident) {
    message = `${h.incident.description}.`.replace(/\.\.$/, '.');
    if (h.incident.incidents.length) message += ` ${h.incident.incidents.join('; ')}.`;
  } else if (h.streamDown) message = 'Live updates are interrupted; reconnecting. New posts may show up late.';
  return (
    <div className="banner-region" role="status" aria-live="polite">
      {message && (
        <div className={`banner ${h.requestsFailing || h.offline ? 'banner-down' : 'banner-warn'}`} data-testid="degraded-banner">
          <span>{message}</span>{' '}
          <a href="/status" className="banner-link">
            Status page
          </a>
        </div>
      )}
    </div>
  );
}
