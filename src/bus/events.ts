/**
 * Domain events: what happened, published after the transaction that made it
 * happen has committed. Small and self-describing, so a subscriber on another
 * node (through NATS in cluster mode) can decide who cares without a query.
 */
import type { Visibility } from '../domain/visibility.js';

/** The facts about a status that deciding its audience needs. */
export interface StatusFacts {
  id: string;
  accountId: string;
  visibility: Visibility;
  inReplyToAccountId: string | null;
  reblogOfId: string | null;
  reblogOfAccountId: string | null;
  mentionIds: string[];
  tags: string[];
}

export type DomainEvent =
  | { type: 'status.created'; status: StatusFacts }
  | { type: 'status.updated'; status: StatusFacts }
  | { type: 'status.deleted'; status: StatusFacts }
  | { type: 'notification.created'; notificationId: string; accountId: string }
  | {
      type: 'relationship.changed';
      accountId: string;
      targetAccountId: string;
      change: 'follow' | 'unfollow' | 'block' | 'unblock' | 'mute' | 'unmute' | 'tag.follow' | 'tag.unfollow';
      /** For tag follows: the tag's name. */
      tag?: string;
    };

export type DomainEventType = DomainEvent['type'];
