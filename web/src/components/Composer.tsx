/**
 * Writing a post. The counter is the server's own countLength (shared from
 * src/domain/text.ts), mentions and hashtags are highlighted with the server's
 * own tokenizer, and the draft (with the Idempotency-Key it was given when
 * composing began) is kept in localStorage until the post is handed to the outbox.
 */
import { useEffect, useId, useMemo, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { countLength, tokenize } from '../../../src/domain/text';
import { session } from '../lib/auth';
import { api, describeError } from '../lib/http';
import { instance, maxChars } from '../lib/instance';
import { enqueue, newIdempotencyKey } from '../lib/outbox';
import { putStatus } from '../lib/statuses';
import { useStore } from '../lib/store';
import type { Status, StatusSource, Visibility } from '../lib/types';

interface Draft {
  text: string;
  cwOn: boolean;
  cw: string;
  visibility: Visibility;
  key: string;
}

const VISIBILITIES: { value: Visibility; label: string }[] = [
  { value: 'public', label: 'Public' },
  { value: 'unlisted', label: 'Quiet public (not in public timelines)' },
  { value: 'private', label: 'Followers only' },
  { value: 'direct', label: 'Mentioned people only' },
];

function draftKey(accountId: string, replyTo?: string): string {
  return `starling.draft.v1:${accountId}:${replyTo ?? 'new'}`;
}

function loadDraft(key: string): Draft | null {
  try {
    const d = JSON.parse(localStorage.getItem(key) ?? 'null') as Draft | null;
    return d && typeof d.text === 'string' && typeof d.key === 'string' ? d : null;
  } catch {
    return null;
  }
}

function initialText(replyTo: Status | undefined, me: string | undefined): string {
  if (!replyTo) return '';
  const accts = [replyTo.account.acct, ...replyTo.mentions.map((m) => m.acct)].filter((a, i, all) => a !== me && all.indexOf(a) === i);
  return accts.length ? `${accts.map((a) => `@${a}`).join(' ')} ` : '';
}

export interface ComposerProps {
  replyTo?: Status;
  /** Editing one's own post: saves with PUT instead of posting. */
  editing?: Status;
  autoFocus?: boolean;
  onDone?: () => void;
  onCancel?: () => void;
}

export function Composer({ replyTo, editing, autoFocus, onDone, onCancel }: ComposerProps) {
  const s = useStore(session);
  const inst = useStore(instance);
  const max = maxChars(inst);
  const me = s?.account;
  const storageKey = me && !editing ? draftKey(me.id, replyTo?.id) : null;
  const [draft, setDraft] = useState<Draft>(() => {
    const saved = storageKey ? loadDraft(storageKey) : null;
    return (
      saved ?? {
        text: initialText(replyTo, me?.acct),
        cwOn: Boolean(replyTo?.spoiler_text),
        cw: replyTo?.spoiler_text ?? '',
        visibility: replyTo ? (replyTo.visibility === 'public' ? 'public' : replyTo.visibility) : 'public',
        key: newIdempotencyKey(),
      }
    );
  });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [loadingSource, setLoadingSource] = useState(Boolean(editing));
  const textRef = useRef<HTMLTextAreaElement>(null);
  const backdropRef = useRef<HTMLDivElement>(null);
  const ids = useId();

  // Editing starts from the post's source text.
  useEffect(() => {
    if (!editing) return;
    let live = true;
    api<StatusSource>(`/api/v1/statuses/${editing.id}/source`)
      .then(({ data }) => live && setDraft((d) => ({ ...d, text: data.text, cw: data.spoiler_text, cwOn: data.spoiler_text !== '', visibility: editing.visibility })))
      .catch((err) => live && setError(describeError(err)))
      .finally(() => live && setLoadingSource(false));
    return () => {
      live = false;
    };
  }, [editing]);

  useEffect(() => {
    if (!storageKey) return;
    if (draft.text.trim() === '' && !draft.cwOn) localStorage.removeItem(storageKey);
    else localStorage.setItem(storageKey, JSON.stringify(draft));
  }, [draft, storageKey]);

  useEffect(() => {
    if (autoFocus && textRef.current && !loadingSource) {
      const el = textRef.current;
      el.focus();
      el.setSelectionRange(el.value.length, el.value.length);
    }
  }, [autoFocus, loadingSource]);

  const used = useMemo(() => countLength(draft.text, draft.cwOn ? draft.cw : ''), [draft.text, draft.cw, draft.cwOn]);
  const remaining = max - used;
  const empty = draft.text.trim() === '';
  const canSubmit = !empty && remaining >= 0 && !busy && !loadingSource && Boolean(me);

  const submit = async (e?: FormEvent) => {
    e?.preventDefault();
    if (!canSubmit || !me) return;
    setError(null);
    if (editing) {
      setBusy(true);
      try {
        const { data } = await api<Status>(`/api/v1/statuses/${editing.id}`, {
          method: 'PUT',
          body: { status: draft.text, spoiler_text: draft.cwOn ? draft.cw : '', sensitive: draft.cwOn && draft.cw !== '' },
        });
        putStatus(data);
        onDone?.();
      } catch (err) {
        // The edited text stays in the box: nothing is lost.
        setError(`Not saved. ${describeError(err)}`);
      } finally {
        setBusy(false);
      }
      return;
    }
    // Into the outbox under the key this draft was given; the outbox sends, retries and reports.
    enqueue(
      draft.key,
      {
        status: draft.text,
        visibility: draft.visibility,
        ...(draft.cwOn && draft.cw ? { spoiler_text: draft.cw, sensitive: true } : {}),
        ...(replyTo ? { in_reply_to_id: replyTo.id } : {}),
      },
      me.id,
    );
    if (storageKey) localStorage.removeItem(storageKey);
    setDraft((d) => ({ text: replyTo ? initialText(replyTo, me.acct) : '', cwOn: false, cw: '', visibility: d.visibility, key: newIdempotencyKey() }));
    onDone?.();
    textRef.current?.focus();
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      void submit();
    } else if (e.key === 'Escape' && onCancel) {
      e.preventDefault();
      onCancel();
    }
  };

  const syncScroll = () => {
    if (backdropRef.current && textRef.current) backdropRef.current.scrollTop = textRef.current.scrollTop;
  };

  const label = editing ? 'Edit your post' : replyTo ? `Reply to ${replyTo.account.acct}` : "What's on your mind?";
  const counterClass = remaining < 0 ? 'counter over' : remaining <= 20 ? 'counter near' : 'counter';

  return (
    <form className="composer" onSubmit={submit} aria-label={editing ? 'Edit post' : replyTo ? 'Reply' : 'New post'}>
      {draft.cwOn && (
        <>
          <label className="sr-only" htmlFor={`${ids}-cw`}>
            Content warning
          </label>
          <input
            id={`${ids}-cw`}
            className="cw-input"
            type="text"
            placeholder="Content warning (shown instead of the post until opened)"
            value={draft.cw}
            onChange={(e) => setDraft({ ...draft, cw: e.target.value })}
          />
        </>
      )}
      <div className="compose-field">
        <div className="compose-backdrop" ref={backdropRef} aria-hidden="true">
          {tokenize(draft.text).map((t, i) =>
            t.kind === 'mention' || t.kind === 'hashtag' ? (
              <mark key={i} className={t.kind}>
                {t.text}
              </mark>
            ) : (
              <span key={i}>{t.text}</span>
            ),
          )}
          {'\u200b'}
        </div>
        <label className="sr-only" htmlFor={`${ids}-text`}>
          {label}
        </label>
        <textarea
          id={`${ids}-text`}
          ref={textRef}
          className="compose-text"
          placeholder={label}
          value={draft.text}
          rows={replyTo || editing ? 3 : 4}
          disabled={loadingSource}
          onChange={(e) => setDraft({ ...draft, text: e.target.value })}
          onScroll={syncScroll}
          onKeyDown={onKeyDown}
          aria-describedby={`${ids}-count ${error ? `${ids}-err` : ''}`}
          aria-invalid={remaining < 0}
          spellCheck
        />
      </div>
      <div className="compose-bar">
        <button
          type="button"
          className={`btn-chip${draft.cwOn ? ' on' : ''}`}
          aria-pressed={draft.cwOn}
          onClick={() => setDraft({ ...draft, cwOn: !draft.cwOn })}
          title="Content warning"
        >
          CW
        </button>
        {!editing && (
          <>
            <label className="sr-only" htmlFor={`${ids}-vis`}>
              Who can see this
            </label>
            <select id={`${ids}-vis`} className="visibility" value={draft.visibility} onChange={(e) => setDraft({ ...draft, visibility: e.target.value as Visibility })}>
              {VISIBILITIES.map((v) => (
                <option key={v.value} value={v.value}>
                  {v.label}
                </option>
              ))}
            </select>
          </>
        )}
        <span className="spacer" />
        <span id={`${ids}-count`} className={counterClass} data-testid="char-counter" aria-live={remaining <= 20 ? 'polite' : 'off'}>
          {remaining}
          <span className="sr-only"> characters left</span>
        </span>
        {onCancel && (
          <button type="button" className="btn btn-ghost" onClick={onCancel}>
            Cancel
          </button>
        )}
        <button type="submit" className="btn btn-primary" disabled={!canSubmit}>
          {editing ? (busy ? 'Saving…' : 'Save') : replyTo ? 'Reply' : 'Post'}
        </button>
      </div>
      {error && (
        <p className="form-error" id={`${ids}-err`} role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
