/**
 * Full-text search over statuses (and, at the end, account search's
 * conditions), behind small interfaces so that services never see the engine.
 *
 * A search index answers one question: "which statuses match what this
 * person typed?", as a SQL condition on the `statuses` table. The service
 * (services/search.ts) puts that condition into an ordinary query, where
 * visibility, blocks, `account_id` and paging are written in portable SQL, so
 * a page is full of what the viewer may see and offsets stay stable.
 *
 * Ranking: newest first (by id), as Mastodon orders its full-text results.
 * Relevance ranking (bm25) was left out on purpose: people search a
 * microblog for "that post I saw", recency is what they expect, and it keeps
 * the order identical on every engine (and cheap: no scoring of every match).
 *
 * What people type is never passed to an engine as query syntax.
 * `parseSearchTerms` turns it into plain terms (a "quoted phrase" stays one
 * term; the last bare word matches as a prefix, for search-as-you-type), and
 * each engine quotes those terms in its own syntax, so `"`, `*`, `OR`,
 * `NEAR(`, `col:` or `')--` are just text that finds what contains them, or
 * nothing.
 *
 * Engines:
 * - SQLite FTS5 (`fts5StatusSearch`, this file): the `statuses_fts` table and
 *   triggers made by migrations/0002-search.ts.
 * - PostgreSQL (`postgresStatusSearch`, this file): a partial GIN index on
 *   `to_tsvector('simple', starling_unaccent(spoiler_text || ' ' || text))`
 *   made by migrations/0006-search-postgres.ts; `matching()` repeats that
 *   expression and the index's predicate (originals, not deleted) and
 *   compares it with a tsquery built from `parseSearchTerms` by PostgreSQL's
 *   parser (`tsQuery`): each term a phrase, the prefix term's last lexeme
 *   ending in `:*`, terms ANDed.
 */
import { sql, SqliteAdapter, type Expression, type Kysely, type SqlBool } from 'kysely';

export interface SearchTerm {
  /** Text as typed, without quotes or control characters; contains at least one letter or digit. */
  text: string;
  /** Match words that start with this term's last word (the word being typed). */
  prefix: boolean;
}

export interface StatusSearchIndex {
  /** For logs and tests. */
  readonly engine: string;
  /**
   * A condition on a row of `statuses` (referenced by that name): true when
   * the status's text or content warning matches `query`. It must be true only
   * for originals, never for reblogs (the service relies on that rather than
   * adding `reblog_of_id IS NULL`, which spoils SQLite's plan); the service
   * also excludes deleted statuses. Null when the query holds nothing
   * searchable (only punctuation or spaces): then nothing matches.
   */
  matching(query: string): Expression<SqlBool> | null;
}

/** More terms than this are ignored: each one costs an index lookup. */
export const MAX_SEARCH_TERMS = 16;
/** Longer queries are cut: nobody types more, and a term list is built from it. */
export const MAX_SEARCH_QUERY_LENGTH = 500;

const SEARCHABLE = /[\p{L}\p{N}]/u;

/**
 * Splits a query into terms. `"a phrase"` is one term; other text splits on
 * white space; an unterminated quote runs to the end. Terms without a letter
 * or digit are dropped (no engine can match them). The last term is a prefix
 * unless it was a closed phrase.
 */
export function parseSearchTerms(query: string): SearchTerm[] {
  const input = query.slice(0, MAX_SEARCH_QUERY_LENGTH).replace(/[\p{Cc}\p{Cs}]/gu, ' ');
  const terms: SearchTerm[] = [];
  const re = /"([^"]*)("?)|([^\s"]+)/g;
  for (let m = re.exec(input); m !== null; m = re.exec(input)) {
    const phrase = m[1] !== undefined;
    const text = (phrase ? m[1] : m[3]).trim().replace(/\s+/g, ' ');
    if (!SEARCHABLE.test(text)) continue;
    // Only the final term may be a prefix; mark every candidate and fix up below.
    terms.push({ text, prefix: !phrase || m[2] === '' });
  }
  const kept = terms.slice(0, MAX_SEARCH_TERMS);
  return kept.map((t, i) => ({ text: t.text, prefix: t.prefix && i === terms.length - 1 }));
}

/** An FTS5 query that means exactly the terms: every term a quoted string ("" escapes "), implicitly ANDed. */
export function fts5Query(terms: readonly SearchTerm[]): string {
  return terms.map((t) => `"${t.text.replace(/"/g, '""')}"${t.prefix ? '*' : ''}`).join(' ');
}

/** SQLite FTS5 over `statuses_fts` (rowid = statuses.id), kept in step by triggers. */
export const fts5StatusSearch: StatusSearchIndex = {
  engine: 'sqlite-fts5',
  matching(query) {
    const terms = parseSearchTerms(query);
    if (terms.length === 0) return null;
    return sql<SqlBool>`statuses.id IN (SELECT rowid FROM statuses_fts WHERE statuses_fts MATCH ${fts5Query(terms)})`;
  },
};

/**
 * The tsquery for the terms, built by PostgreSQL's own parser so that a term
 * splits into exactly the tokens its text would have in the index (a host
 * such as "example.com" stays one token, "well-known" gives "well-known",
 * "well" and "known"): each term is a phrase (`phraseto_tsquery`, which reads
 * its input as plain text, never as query syntax), the prefix term's last
 * term also matches with its last word as a prefix (its words quoted, so
 * nothing typed is query syntax), and the terms are ANDed.
 */
export function tsQuery(terms: readonly SearchTerm[]): Expression<unknown> | null {
  if (terms.length === 0) return null;
  const phrase = (t: SearchTerm) => sql`phraseto_tsquery('simple'::regconfig, starling_unaccent(${t.text}::text))`;
  const parts = terms.map((t) => {
    if (!t.prefix) return phrase(t);
    // The word being typed: the whole phrase as typed, or its words with the last one a prefix. (Appending
    // ':*' to the phrase's text would not do: to_tsquery parses 'well-known' into three lexemes again.)
    const words = t.text.split(/[^\p{L}\p{N}]+/u).filter(Boolean);
    if (words.length === 0) return phrase(t);
    const typed = words.map((w, i) => `'${w.replace(/'/g, "''")}'${i === words.length - 1 ? ':*' : ''}`).join(' <-> ');
    return sql`(${phrase(t)} || to_tsquery('simple'::regconfig, starling_unaccent(${typed}::text)))`;
  });
  return sql.join(parts, sql` && `);
}

/** PostgreSQL full-text search over the partial GIN index of migrations/0006-search-postgres.ts. */
export const postgresStatusSearch: StatusSearchIndex = {
  engine: 'postgres-tsvector',
  matching(query) {
    const q = tsQuery(parseSearchTerms(query));
    if (q === null) return null;
    // Expression and predicate exactly as in the index, or the planner cannot use it.
    return sql<SqlBool>`(statuses.reblog_of_id IS NULL AND statuses.deleted_at IS NULL
      AND to_tsvector('simple'::regconfig, starling_unaccent(statuses.spoiler_text || ' ' || statuses.text)) @@ (${q}))`;
  },
};

/** The search index for a database: the one place that knows which engine is behind it. */
export function statusSearchIndexFor(db: Kysely<any>): StatusSearchIndex {
  return db.getExecutor().adapter instanceof SqliteAdapter ? fts5StatusSearch : postgresStatusSearch;
}

/**
 * What account search asks of the database: conditions on a row of `accounts`
 * (referenced by that name) that the indexes of migrations/0009-account-search.ts
 * serve, so a search reads what matches rather than every account.
 */
export interface AccountSearch {
  readonly engine: string;
  /** The username starts with `prefix` (lower case, as `username_lower`): a range on an index. */
  usernameStartsWith(prefix: string): Expression<SqlBool>;
  /**
   * A word of the display name starts with the query's last term and the other terms are words of it
   * (`parseSearchTerms`, as status search: case- and accent-insensitive). Null when nothing is searchable.
   */
  displayNameMatching(query: string): Expression<SqlBool> | null;
}

/**
 * The least string above every string that starts with `prefix`, in code point order (which is the byte order
 * of UTF-8: SQLite's BINARY, PostgreSQL's "C"); null when there is none (a prefix of U+10FFFF only).
 */
export function prefixUpperBound(prefix: string): string | null {
  const chars = [...prefix];
  while (chars.length > 0) {
    let next = chars.pop()!.codePointAt(0)! + 1;
    if (next === 0xd800) next = 0xe000; // surrogates are not characters
    if (next <= 0x10ffff) return chars.join('') + String.fromCodePoint(next);
  }
  return null;
}

/** `column >= prefix AND column < its upper bound`, over an expression that sorts by code point. */
function prefixRange(column: Expression<string>, prefix: string): Expression<SqlBool> {
  const upper = prefixUpperBound(prefix);
  return upper === null ? sql<SqlBool>`(${column} >= ${prefix})` : sql<SqlBool>`(${column} >= ${prefix} AND ${column} < ${upper})`;
}

/** SQLite: the username's unique index (BINARY), and FTS5 over `accounts_fts` (rowid = accounts.id). */
export const fts5AccountSearch: AccountSearch = {
  engine: 'sqlite-fts5',
  usernameStartsWith: (prefix) => prefixRange(sql.ref('accounts.username_lower'), prefix),
  displayNameMatching(query) {
    const terms = parseSearchTerms(query);
    if (terms.length === 0) return null;
    return sql<SqlBool>`accounts.id IN (SELECT rowid FROM accounts_fts WHERE accounts_fts MATCH ${fts5Query(terms)})`;
  },
};

/** PostgreSQL: `(username_lower COLLATE "C")` and the GIN index on the display name, expressions exactly as indexed. */
export const postgresAccountSearch: AccountSearch = {
  engine: 'postgres-tsvector',
  usernameStartsWith: (prefix) => prefixRange(sql<string>`(accounts.username_lower COLLATE "C")`, prefix),
  displayNameMatching(query) {
    const q = tsQuery(parseSearchTerms(query));
    if (q === null) return null;
    return sql<SqlBool>`to_tsvector('simple'::regconfig, starling_unaccent(accounts.display_name)) @@ (${q})`;
  },
};

/** The account search conditions for a database. */
export function accountSearchFor(db: Kysely<any>): AccountSearch {
  return db.getExecutor().adapter instanceof SqliteAdapter ? fts5AccountSearch : postgresAccountSearch;
}
