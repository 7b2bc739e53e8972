/** Who may see a status: the one rule every read path applies. */
export const VISIBILITIES = ['public', 'unlisted', 'private', 'direct'] as const;
export type Visibility = (typeof VISIBILITIES)[number];

export interface ViewerRelation {
  isAuthor: boolean;
  /** The viewer follows the author (accepted, not a pending request). */
  follows: boolean;
  /** The viewer is mentioned in the status. */
  mentioned: boolean;
  /** Either side blocks the other. */
  blocked: boolean;
}

export function canView(visibility: Visibility, rel: ViewerRelation): boolean {
  if (rel.isAuthor) return true;
  if (rel.blocked) return false;
  switch (visibility) {
    case 'public':
    case 'unlisted':
      return true;
    case 'private':
      return rel.follows || rel.mentioned;
    case 'direct':
      return rel.mentioned;
  }
}

/** Reblogs of private and direct statuses are not allowed, as in Mastodon. */
export function canReblog(visibility: Visibility): boolean {
  return visibility === 'public' || visibility === 'unlisted';
}
