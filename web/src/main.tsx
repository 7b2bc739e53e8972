import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { startHealth } from './lib/health';
import { loadInstance } from './lib/instance';
import { session } from './lib/auth';
import { prefetchTimeline } from './components/Timeline';
import './styles.css';

// The home timeline is what a signed-in person came for: ask for it before React starts.
if (session.get() && location.pathname === '/') prefetchTimeline('home', '/api/v1/timelines/home');
startHealth();
void loadInstance();
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
