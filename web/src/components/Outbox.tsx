/** The outbox on screen: every post not yet acknowledged, with its state in words. */
import { useEffect, useState } from 'react';
import { session } from '../lib/auth';
import { discard, outbox, retryNow, resubmit, type OutboxEntry } from '../lib/outbox';
import { Link } from '../lib/router';
import { useStore } from '../lib/store';

function useNow(active: boolean): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return;
    // From now, not from when the clock last ran: a wait shown as the entry is queued again must be the real one.
    setNow(Date.now());
    const i = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(i);
  }, [active]);
  return now;
}

function excerpt(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > 90 ? `${t.slice(0, 89)}…` : t;
}

function Entry({ e, now }: { e: OutboxEntry; now: number }) {
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(e.params.status);
  const me = useStore(session)?.account;
  const wait = Math.max(0, Math.ceil((e.nextAttemptAt - now) / 1000));
  let stateText: string;
  switch (e.state) {
    case 'queued':
      stateText = e.attempts === 0 ? 'Queued' : `Queued — ${e.error ?? 'not sent yet'}; trying again ${wait > 0 ? `in ${wait} s` : 'now'}`;
      break;
    case 'sending':
      stateText = 'Sending…';
      break;
    case 'posted':
      stateText = 'Posted';
      break;
    case 'failed':
      stateText = `Not posted: ${e.error ?? 'the server refused it'}`;
      break;
  }
  return (
    <li className={`outbox-entry state-${e.state}`} data-state={e.state} data-key={e.key}>
      <span className={`outbox-badge badge-${e.state}`}>{e.state === 'failed' ? 'needs you' : e.state}</span>
      <span className="outbox-text">{excerpt(e.params.status)}</span>
      <span className="outbox-state">{stateText}</span>
      <span className="outbox-actions">
        {e.state === 'queued' && e.attempts > 0 && (
          <button type="button" className="btn-chip" onClick={() => retryNow(e.key)}>
            Retry now
          </button>
        )}
        {e.state === 'posted' && e.statusId && me && <Link to={`/@${me.acct}/${e.statusId}`}>View</Link>}
        {e.state === 'failed' && !editing && (
          <>
            <button type="button" className="btn-chip" onClick={() => setEditing(true)}>
              Edit
            </button>
            <button type="button" className="btn-chip danger" onClick={() => discard(e.key)}>
              Discard
            </button>
          </>
        )}
      </span>
      {editing && (
        <form
          className="outbox-edit"
          onSubmit={(ev) => {
            ev.preventDefault();
            resubmit(e.key, { ...e.params, status: text });
          }}
        >
          <label className="sr-only" htmlFor={`ob-${e.key}`}>
            Edit the post
          </label>
          <textarea id={`ob-${e.key}`} value={text} onChange={(ev) => setText(ev.target.value)} rows={3} />
          <button type="submit" className="btn btn-primary">
            Send again
          </button>
          <button type="button" className="btn btn-ghost" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </form>
      )}
    </li>
  );
}

export function OutboxPanel() {
  const all = useStore(outbox);
  const me = useStore(session)?.account;
  const mine = all.filter((e) => e.accountId === me?.id);
  const now = useNow(mine.some((e) => e.state === 'queued'));
  if (!me || mine.length === 0) return null;
  const waiting = mine.filter((e) => e.state !== 'posted').length;
  return (
    <section className="outbox" aria-labelledby="outbox-title">
      <h2 id="outbox-title" className="outbox-title">
        Outbox{waiting > 0 ? ` — ${waiting} waiting` : ''}
      </h2>
      <p className="outbox-help">{waiting > 0 ? 'Kept on this device and sent as soon as Starling takes them. Each is posted once.' : 'All sent.'}</p>
      <ul aria-live="polite">
        {mine.map((e) => (
          <Entry key={e.key} e={e} now={now} />
        ))}
      </ul>
    </section>
  );
}
