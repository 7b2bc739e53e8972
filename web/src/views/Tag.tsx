import { useEffect, useState } from 'react';
import { PageHeading } from '../components/common';
import { Timeline } from '../components/Timeline';
import { session } from '../lib/auth';
import { api, describeError } from '../lib/http';
import { useStore } from '../lib/store';
import { toast } from '../lib/toasts';
import type { Tag as TagT } from '../lib/types';

export default function Tag({ name }: { name: string }) {
  const signedIn = Boolean(useStore(session));
  const [tag, setTag] = useState<TagT | null>(null);
  useEffect(() => {
    if (!signedIn) return;
    let live = true;
    api<TagT>(`/api/v1/tags/${encodeURIComponent(name)}`)
      .then(({ data }) => live && setTag(data))
      .catch(() => live && setTag(null));
    return () => {
      live = false;
    };
  }, [name, signedIn]);

  const toggleFollow = async () => {
    if (!tag) return;
    const was = Boolean(tag.following);
    setTag({ ...tag, following: !was });
    try {
      const { data } = await api<TagT>(`/api/v1/tags/${encodeURIComponent(name)}/${was ? 'unfollow' : 'follow'}`, { method: 'POST' });
      setTag(data);
    } catch (err) {
      setTag({ ...tag, following: was });
      toast(`Couldn't ${was ? 'unfollow' : 'follow'} #${name}. ${describeError(err)}`, 'error');
    }
  };

  return (
    <>
      <div className="page-head-row">
        <PageHeading>#{name}</PageHeading>
        {tag && (
          <button type="button" className={`btn ${tag.following ? 'btn-ghost' : 'btn-primary'}`} aria-pressed={Boolean(tag.following)} onClick={() => void toggleFollow()}>
            {tag.following ? 'Unfollow tag' : 'Follow tag'}
          </button>
        )}
      </div>
      <Timeline
        key={`tag:${name.toLowerCase()}`}
        cacheKey={`tag:${name.toLowerCase()}`}
        source={`/api/v1/timelines/tag/${encodeURIComponent(name)}`}
        stream={{ name: 'hashtag', tag: name }}
        label={`Posts tagged #${name}`}
        empty={`No public posts with #${name} yet.`}
      />
    </>
  );
}
