/** Search for people, posts and hashtags (GET /api/v2/search). */
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { AccountName, Avatar, ErrorBox, PageHeading, Spinner } from '../components/common';
import { StatusCard } from '../components/StatusCard';
import { Trends } from '../components/Trends';
import { api, describeError } from '../lib/http';
import { Link, navigate, useLocation } from '../lib/router';
import { putStatuses } from '../lib/statuses';
import type { SearchResults } from '../lib/types';

export default function Search() {
  const loc = useLocation();
  const q = loc.search.get('q') ?? '';
  const [input, setInput] = useState(q);
  const [results, setResults] = useState<{ q: string; r: SearchResults } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const inputRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    setInput(q);
    if (!q.trim()) {
      setResults(null);
      return;
    }
    let live = true;
    setLoading(true);
    setError(null);
    api<SearchResults>('/api/v2/search', { query: { q, resolve: false, limit: 20 } })
      .then(({ data }) => {
        if (!live) return;
        putStatuses(data.statuses);
        setResults({ q, r: data });
      })
      .catch((err) => live && setError(describeError(err)))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [q]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const v = input.trim();
    if (v) navigate(`/search?q=${encodeURIComponent(v)}`);
  };

  const r = results?.r;
  const nothing = r && r.accounts.length + r.statuses.length + r.hashtags.length === 0;

  return (
    <>
      <PageHeading>Search</PageHeading>
      <form role="search" className="search-form" onSubmit={submit}>
        <label htmlFor="search-q" className="sr-only">
          Search for people, posts and hashtags
        </label>
        <input
          id="search-q"
          ref={inputRef}
          type="search"
          placeholder="People, posts, #hashtags"
          value={input}
          onChange={(e) => setInput(e.target.value)}
          autoComplete="off"
        />
        <button type="submit" className="btn btn-primary">
          Search
        </button>
      </form>
      {loading && <Spinner label="Searching" />}
      {error && <ErrorBox>{error}</ErrorBox>}
      {nothing && <p className="empty">Nothing found for “{results.q}”.</p>}
      {r && r.accounts.length > 0 && (
        <section aria-labelledby="sr-people">
          <h2 id="sr-people" className="section-title">
            People
          </h2>
          <ul className="account-list">
            {r.accounts.map((a) => (
              <li key={a.id} className="account-row">
                <Avatar account={a} size={40} />
                <AccountName account={a} />
              </li>
            ))}
          </ul>
        </section>
      )}
      {r && r.hashtags.length > 0 && (
        <section aria-labelledby="sr-tags">
          <h2 id="sr-tags" className="section-title">
            Hashtags
          </h2>
          <ul className="tag-list">
            {r.hashtags.map((t) => (
              <li key={t.name}>
                <Link to={`/tags/${encodeURIComponent(t.name)}`}>#{t.name}</Link>
              </li>
            ))}
          </ul>
        </section>
      )}
      {r && r.statuses.length > 0 && (
        <section aria-labelledby="sr-posts">
          <h2 id="sr-posts" className="section-title">
            Posts
          </h2>
          {r.statuses.map((s) => (
            <StatusCard key={s.id} id={s.id} />
          ))}
        </section>
      )}
      {!q && (
        <div className="search-trends">
          <Trends />
        </div>
      )}
    </>
  );
}
