import { useEffect, useState } from 'react';
import { api } from '../lib/http';
import { Link } from '../lib/router';
import type { Tag } from '../lib/types';

function uses(t: Tag): { posts: number; people: number } {
  const h = t.history ?? [];
  return { posts: h.slice(0, 2).reduce((n, d) => n + Number(d.uses || 0), 0), people: h.slice(0, 2).reduce((n, d) => n + Number(d.accounts || 0), 0) };
}

export function Trends({ limit = 8 }: { limit?: number }) {
  const [tags, setTags] = useState<Tag[] | null>(null);
  useEffect(() => {
    let live = true;
    const load = () =>
      api<Tag[]>('/api/v1/trends/tags', { query: { limit } })
        .then(({ data }) => live && setTags(data))
        .catch(() => live && setTags((t) => t ?? []));
    void load();
    const i = setInterval(load, 5 * 60_000);
    return () => {
      live = false;
      clearInterval(i);
    };
  }, [limit]);
  return (
    <section className="trends" aria-labelledby="trends-title">
      <h2 id="trends-title">Trending now</h2>
      {tags === null ? (
        <p className="muted">Loading…</p>
      ) : tags.length === 0 ? (
        <p className="muted">Nothing is trending right now.</p>
      ) : (
        <ol>
          {tags.map((t) => {
            const u = uses(t);
            return (
              <li key={t.name}>
                <Link to={`/tags/${encodeURIComponent(t.name)}`}>#{t.name}</Link>
                <span className="muted">
                  {u.people} {u.people === 1 ? 'person' : 'people'} · {u.posts} {u.posts === 1 ? 'post' : 'posts'}
                </span>
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}
