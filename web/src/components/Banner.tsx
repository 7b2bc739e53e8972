/** Tells people plainly when Starling is not working normally, and links to the status page. */
import { firstSentence, health } from '../lib/health';
import { outbox } from '../lib/outbox';
import { useStore } from '../lib/store';

export function DegradedBanner() {
  const h = useStore(health);
  const waiting = useStore(outbox).some((e) => e.state === 'queued' || e.state === 'sending');
  let message: string | null = null;
  if (h.offline) message = "You're offline. What you write is kept on this device and sent when you're back online.";
  else if (h.requestsFailing) message = "Starling can't be reached right now. What you write is kept on this device and sent when it's back.";
  else if (h.refusal) {
    // The server's own words; for a refused write, its first sentence (the rest is advice to apps) and, if posts
    // wait in the outbox, what happens to them.
    message = h.refusal.write ? firstSentence(h.refusal.message) : h.refusal.message;
    if (h.refusal.write && waiting) message += ' What you write is kept on this device and sent when Starling takes it.';
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
