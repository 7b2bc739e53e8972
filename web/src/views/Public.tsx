import { PageHeading } from '../components/common';
import { Timeline } from '../components/Timeline';

export default function Public({ local }: { local: boolean }) {
  return (
    <>
      <PageHeading>{local ? 'Local timeline' : 'Everything'}</PageHeading>
      <p className="page-intro">{local ? 'Public posts from people on this server.' : 'Public posts from everywhere this server knows.'}</p>
      <Timeline
        key={local ? 'local' : 'public'}
        cacheKey={local ? 'local' : 'public'}
        source="/api/v1/timelines/public"
        query={local ? { local: true } : undefined}
        stream={{ name: local ? 'public:local' : 'public' }}
        perfMark
        label={local ? 'Local timeline' : 'Public timeline'}
        empty="No public posts yet."
      />
    </>
  );
}
