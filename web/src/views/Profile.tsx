/** A person's page: who they are, follow/unfollow, their posts, who follows them and whom they follow. */
import { useCallback, useEffect, useState } from 'react';
import { AccountName, Avatar, ErrorBox, PageHeading, Spinner, displayName } from '../components/common';
import { onContentClick } from '../components/StatusCard';
import { Timeline } from '../components/Timeline';
import { session } from '../lib/auth';
import { api, ApiError, describeError } from '../lib/http';
import { Link } from '../lib/router';
import { useStore } from '../lib/store';
import { toast } from '../lib/toasts';
import type { Account, Relationship } from '../lib/types';

export default function Profile({ acct, tab }: { acct: string; tab: 'posts' | 'followers' | 'following' }) {
  const me = useStore(session)?.account;
  const [account, setAccount] = useState<Account | null>(null);
  const [rel, setRel] = useState<Relationship | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    setError(null);
    try {
      const { data } = await api<Account>('/api/v1/accounts/lookup', { query: { acct } });
      setAccount(data);
      if (me && data.id !== me.id) {
        const r = await api<Relationship[]>('/api/v1/accounts/relationships', { query: { id: [data.id] } });
        setRel(r.data[0] ?? null);
      }
    } catch (err) {
      setError(err instanceof ApiError && err.status === 404 ? `There is no account @${acct} here.` : describeError(err));
    }
  }, [acct, me?.id]);

  useEffect(() => {
    setAccount(null);
    setRel(null);
    void load();
  }, [load]);

  const toggleFollow = async () => {
    if (!account || !rel || busy) return;
    const was = rel.following || rel.requested;
    setBusy(true);
    // Shown at once, undone if the server refuses.
    setRel({ ...rel, following: !was && !account.locked, requested: !was && account.locked });
    setAccount({ ...account, followers_count: Math.max(0, account.followers_count + (was ? -1 : account.locked ? 0 : 1)) });
    try {
      const { data } = await api<Relationship>(`/api/v1/accounts/${account.id}/${was ? 'unfollow' : 'follow'}`, { method: 'POST' });
      setRel(data);
    } catch (err) {
      setRel(rel);
      setAccount(account);
      toast(`Couldn't ${was ? 'unfollow' : 'follow'} ${displayName(account)}. ${describeError(err)}`, 'error');
    } finally {
      setBusy(false);
    }
  };

  if (error) return <ErrorBox onRetry={() => void load()}>{error}</ErrorBox>;
  if (!account) return <Spinner label="Loading the profile" />;
  const mine = me?.id === account.id;
  const followLabel = rel?.following ? 'Unfollow' : rel?.requested ? 'Cancel follow request' : account.locked ? 'Request to follow' : 'Follow';

  return (
    <>
      <section className="profile" aria-labelledby="profile-name">
        <div className="profile-banner" aria-hidden="true" />
        <div className="profile-head">
          <Avatar account={account} size={84} />
          <div className="profile-actions">
            {me && !mine && rel && (
              <button type="button" className={`btn ${rel.following || rel.requested ? 'btn-ghost' : 'btn-primary'}`} onClick={() => void toggleFollow()} disabled={busy}>
                {followLabel}
              </button>
            )}
            {mine && <span className="muted">This is you</span>}
          </div>
        </div>
        <PageHeading id="profile-name">
          <AccountName account={account} link={false} />
        </PageHeading>
        {rel?.followed_by && <p className="chip">Follows you</p>}
        {account.note && <div className="profile-note" onClick={onContentClick} dangerouslySetInnerHTML={{ __html: account.note }} />}
        <nav className="tabs" aria-label="Profile sections">
          <Link to={`/@${account.acct}`} aria-current={tab === 'posts' ? 'page' : undefined}>
            <strong>{account.statuses_count}</strong> {account.statuses_count === 1 ? 'post' : 'posts'}
          </Link>
          <Link to={`/@${account.acct}/following`} aria-current={tab === 'following' ? 'page' : undefined}>
            <strong>{account.following_count}</strong> following
          </Link>
          <Link to={`/@${account.acct}/followers`} aria-current={tab === 'followers' ? 'page' : undefined}>
            <strong>{account.followers_count}</strong> {account.followers_count === 1 ? 'follower' : 'followers'}
          </Link>
        </nav>
      </section>
      {tab === 'posts' ? (
        <Timeline
          key={`account:${account.id}`}
          cacheKey={`account:${account.id}`}
          fresh
          source={`/api/v1/accounts/${account.id}/statuses`}
          showOwnPosts={mine}
          label={`Posts by ${displayName(account)}`}
          empty="No posts yet."
        />
      ) : (
        <AccountList
          key={`${tab}:${account.id}`}
          source={`/api/v1/accounts/${account.id}/${tab}`}
          label={tab === 'followers' ? `People who follow ${displayName(account)}` : `People ${displayName(account)} follows`}
          empty={tab === 'followers' ? 'No followers yet.' : 'Not following anyone yet.'}
        />
      )}
    </>
  );
}

/** A list of accounts, paged by the Link header (the only cursor these lists have). */
export function AccountList({ source, label, empty }: { source: string; label: string; empty: string }) {
  const [accounts, setAccounts] = useState<Account[]>([]);
  const [next, setNext] = useState<string | null>(source);
  const [loading, setLoading] = useState(false);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const more = useCallback(async () => {
    if (!next) return;
    setLoading(true);
    setError(null);
    try {
      const res = await api<Account[]>(next);
      setAccounts((a) => [...a, ...res.data.filter((x) => !a.some((y) => y.id === x.id))]);
      setNext(res.data.length ? res.next : null);
      setLoaded(true);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setLoading(false);
    }
  }, [next]);

  useEffect(() => {
    void more();
    // The first page only; later pages on request.
  }, [source]);

  return (
    <section aria-label={label}>
      <ul className="account-list">
        {accounts.map((a) => (
          <li key={a.id} className="account-row">
            <Avatar account={a} size={40} />
            <AccountName account={a} />
          </li>
        ))}
      </ul>
      {loaded && accounts.length === 0 && <p className="empty">{empty}</p>}
      {error && <ErrorBox onRetry={() => void more()}>{error}</ErrorBox>}
      {loading && <Spinner />}
      {next && loaded && !loading && (
        <div className="load-more">
          <button type="button" className="btn btn-ghost" onClick={() => void more()}>
            Show more
          </button>
        </div>
      )}
    </section>
  );
}
