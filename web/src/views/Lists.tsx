import { PageHeading } from '../components/common';
import { Timeline } from '../components/Timeline';

export default function SavedList({ kind }: { kind: 'bookmarks' | 'favourites' }) {
  const title = kind === 'bookmarks' ? 'Bookmarks' : 'Likes';
  return (
    <>
      <PageHeading>{title}</PageHeading>
      <Timeline
        key={kind}
        cacheKey={kind}
        fresh
        source={`/api/v1/${kind}`}
        label={title}
        empty={kind === 'bookmarks' ? 'Nothing bookmarked yet. Bookmark posts to find them here.' : "You haven't liked any posts yet."}
      />
    </>
  );
}
