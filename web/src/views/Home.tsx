import { Composer } from '../components/Composer';
import { PageHeading } from '../components/common';
import { Timeline } from '../components/Timeline';

export default function Home() {
  return (
    <>
      <PageHeading>Home</PageHeading>
      <Composer />
      <Timeline
        cacheKey="home"
        source="/api/v1/timelines/home"
        stream={{ name: 'user' }}
        showOwnPosts
        perfMark
        label="Home timeline"
        empty="Your home timeline is empty. Follow people to see their posts here, or look at the local timeline."
      />
    </>
  );
}
