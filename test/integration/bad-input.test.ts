/**
 * Bad input, table-driven: every malformed, unauthorised or impossible
 * request gets the exact 4xx Mastodon would give, with a JSON body whose
 * `error` is a non-empty string, never a 5xx, and leaves the database exactly
 * as it was (no partial writes, no new tokens). Raw HTTP through fetch, so
 * what is sent is exactly what the table says.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createUser, startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const BODY_LIMIT = 64 * 1024;
const PASSWORD = 'correct horse battery';
const REDIRECT = 'https://client.example/callback';
const OOB = 'urn:ietf:wg:oauth:2.0:oob';
const VERIFIER = 'v'.repeat(43) + 'erifier-for-the-bad-input-test';

/** Which credentials a case sends. */
type TokenName = 'alice' | 'bob' | 'read' | 'write' | 'app' | 'revoked' | 'unknown';

interface Case {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** May hold `{placeholders}` filled from the fixtures. */
  path: string;
  headers?: Record<string, string>;
  /** An object is sent as JSON; a string is sent as is (with the content type from `headers`, else JSON). */
  body?: string | Record<string, unknown> | unknown[];
  token?: TokenName;
  expectStatus: number;
}

const json = { 'Content-Type': 'application/json' };
const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
const acceptJson = { Accept: 'application/json' };

const BAD_IDS = ['abc', '-1', '99999999999999999999999', '1.5'];
const UNKNOWN_ID = '1000000000000000001';

const cases: Case[] = [
  // ---- bodies that are not a JSON object
  { name: 'statuses: malformed JSON', method: 'POST', path: '/api/v1/statuses', token: 'alice', headers: json, body: '{"status": "hi"', expectStatus: 400 },
  { name: 'statuses: JSON array body', method: 'POST', path: '/api/v1/statuses', token: 'alice', headers: json, body: '["hi"]', expectStatus: 400 },
  { name: 'statuses: JSON string body', method: 'POST', path: '/api/v1/statuses', token: 'alice', headers: json, body: '"hi"', expectStatus: 400 },
  { name: 'statuses: JSON null body', method: 'POST', path: '/api/v1/statuses', token: 'alice', headers: json, body: 'null', expectStatus: 400 },
  { name: 'statuses: text/plain body', method: 'POST', path: '/api/v1/statuses', token: 'alice', headers: { 'Content-Type': 'text/plain' }, body: 'status=hi', expectStatus: 415 },
  { name: 'statuses: application/xml body', method: 'POST', path: '/api/v1/statuses', token: 'alice', headers: { 'Content-Type': 'application/xml' }, body: '<status>hi</status>', expectStatus: 415 },
  { name: 'statuses: body over the limit', method: 'POST', path: '/api/v1/statuses', token: 'alice', headers: json, body: JSON.stringify({ status: 'x'.repeat(100 * 1024) }), expectStatus: 413 },
  { name: 'apps: body over the limit', method: 'POST', path: '/api/v1/apps', headers: form, body: `client_name=${'x'.repeat(100 * 1024)}&redirect_uris=${encodeURIComponent(OOB)}`, expectStatus: 413 },

  // ---- status creation: wrong types and invalid values
  { name: 'statuses: status is a number', method: 'POST', path: '/api/v1/statuses', token: 'alice', body: { status: 123 }, expectStatus: 422 },
  { name: 'statuses: sensitive is an object', method: 'POST', path: '/api/v1/statuses', token: 'alice', body: { status: 'hi', sensitive: { yes: true } }, expectStatus: 422 },
  { name: 'statuses: 501 characters', method: 'POST', path: '/api/v1/statuses', token: 'alice', body: { status: 'a'.repeat(501) }, expectStatus: 422 },
  { name: 'statuses: 500 characters plus a spoiler', method: 'POST', path: '/api/v1/statuses', token: 'alice', body: { status: 'a'.repeat(500), spoiler_text: 'cw' }, expectStatus: 422 },
  { name: 'statuses: empty status', method: 'POST', path: '/api/v1/statuses', token: 'alice', body: { status: '' }, expectStatus: 422 },
  { name: 'statuses: blank status', method: 'POST', path: '/api/v1/statuses', token: 'alice', body: { status: ' \n\t ' }, expectStatus: 422 },
  { name: 'statuses: no status at all', method: 'POST', path: '/api/v1/statuses', token: 'alice', body: {}, expectStatus: 422 },
  { name: 'statuses: empty form status', method: 'POST', path: '/api/v1/statuses', token: 'alice', headers: form, body: 'status=', expectStatus: 422 },
  { name: 'statuses: unknown visibility', method: 'POST', path: '/api/v1/statuses', token: 'alice', body: { status: 'hi', visibility: 'everyone' }, expectStatus: 422 },
  { name: 'statuses: language is not a code', method: 'POST', path: '/api/v1/statuses', token: 'alice', body: { status: 'hi', language: 'english' }, expectStatus: 422 },
  { name: 'statuses: language far too long', method: 'POST', path: '/api/v1/statuses', token: 'alice', body: { status: 'hi', language: 'x'.repeat(40) }, expectStatus: 422 },
  { name: 'statuses: reply to an unknown status', method: 'POST', path: '/api/v1/statuses', token: 'alice', body: { status: 'hi', in_reply_to_id: UNKNOWN_ID }, expectStatus: 404 },
  { name: 'statuses: reply to a malformed id', method: 'POST', path: '/api/v1/statuses', token: 'alice', body: { status: 'hi', in_reply_to_id: 'abc' }, expectStatus: 404 },
  { name: 'statuses: reply to a status the author cannot see', method: 'POST', path: '/api/v1/statuses', token: 'alice', body: { status: 'hi', in_reply_to_id: '{bobPrivate}' }, expectStatus: 404 },
  { name: 'statuses: reply to an unknown status with an Idempotency-Key', method: 'POST', path: '/api/v1/statuses', token: 'alice', headers: { 'Idempotency-Key': 'bad-input-reply' }, body: { status: 'hi', in_reply_to_id: UNKNOWN_ID }, expectStatus: 404 },
  { name: 'statuses: media_ids (not supported)', method: 'POST', path: '/api/v1/statuses', token: 'alice', body: { status: 'hi', media_ids: ['1'] }, expectStatus: 422 },
  { name: 'statuses: poll (not supported)', method: 'POST', path: '/api/v1/statuses', token: 'alice', body: { status: 'hi', poll: { options: ['a', 'b'], expires_in: 600 } }, expectStatus: 422 },
  { name: 'statuses: empty Idempotency-Key', method: 'POST', path: '/api/v1/statuses', token: 'alice', headers: { 'Idempotency-Key': '' }, body: { status: 'hi' }, expectStatus: 422 },
  { name: 'statuses: Idempotency-Key over 256 characters', method: 'POST', path: '/api/v1/statuses', token: 'alice', headers: { 'Idempotency-Key': 'k'.repeat(257) }, body: { status: 'hi' }, expectStatus: 422 },

  // ---- authentication and scopes on status creation
  { name: 'statuses: no token', method: 'POST', path: '/api/v1/statuses', body: { status: 'hi' }, expectStatus: 401 },
  { name: 'statuses: unknown token', method: 'POST', path: '/api/v1/statuses', token: 'unknown', body: { status: 'hi' }, expectStatus: 401 },
  { name: 'statuses: revoked token', method: 'POST', path: '/api/v1/statuses', token: 'revoked', body: { status: 'hi' }, expectStatus: 401 },
  { name: 'statuses: malformed Bearer header', method: 'POST', path: '/api/v1/statuses', headers: { Authorization: 'Bearer two words' }, body: { status: 'hi' }, expectStatus: 401 },
  { name: 'statuses: Basic authorization', method: 'POST', path: '/api/v1/statuses', headers: { Authorization: `Basic ${Buffer.from('alice:secret').toString('base64')}` }, body: { status: 'hi' }, expectStatus: 401 },
  { name: 'statuses: read-only token', method: 'POST', path: '/api/v1/statuses', token: 'read', body: { status: 'hi' }, expectStatus: 403 },
  { name: 'statuses: app-only token', method: 'POST', path: '/api/v1/statuses', token: 'app', body: { status: 'hi' }, expectStatus: 422 },

  // ---- reading, editing, deleting statuses
  ...BAD_IDS.map((id): Case => ({ name: `statuses: show malformed id ${id}`, method: 'GET', path: `/api/v1/statuses/${id}`, token: 'alice', expectStatus: 404 })),
  { name: 'statuses: show unknown id', method: 'GET', path: `/api/v1/statuses/${UNKNOWN_ID}`, expectStatus: 404 },
  { name: 'statuses: show a private status to a stranger', method: 'GET', path: '/api/v1/statuses/{bobPrivate}', token: 'alice', expectStatus: 404 },
  { name: 'statuses: context of a malformed id', method: 'GET', path: '/api/v1/statuses/abc/context', expectStatus: 404 },
  { name: 'statuses: source of someone else’s status', method: 'GET', path: '/api/v1/statuses/{bobStatus}/source', token: 'alice', expectStatus: 404 },
  { name: 'statuses: favourited_by with limit=abc', method: 'GET', path: '/api/v1/statuses/{aliceStatus}/favourited_by?limit=abc', expectStatus: 422 },
  { name: 'statuses: edit someone else’s status', method: 'PUT', path: '/api/v1/statuses/{bobStatus}', token: 'alice', body: { status: 'mine now' }, expectStatus: 404 },
  { name: 'statuses: edit someone else’s private status', method: 'PUT', path: '/api/v1/statuses/{bobPrivate}', token: 'alice', body: { status: 'mine now' }, expectStatus: 404 },
  { name: 'statuses: edit to 501 characters', method: 'PUT', path: '/api/v1/statuses/{aliceStatus}', token: 'alice', body: { status: 'a'.repeat(501) }, expectStatus: 422 },
  { name: 'statuses: edit to empty', method: 'PUT', path: '/api/v1/statuses/{aliceStatus}', token: 'alice', body: { status: '' }, expectStatus: 422 },
  { name: 'statuses: edit with a JSON array body', method: 'PUT', path: '/api/v1/statuses/{aliceStatus}', token: 'alice', headers: json, body: '[]', expectStatus: 400 },
  { name: 'statuses: edit with a bad language', method: 'PUT', path: '/api/v1/statuses/{aliceStatus}', token: 'alice', body: { status: 'edited', language: 'klingon!' }, expectStatus: 422 },
  { name: 'statuses: edit a malformed id', method: 'PUT', path: '/api/v1/statuses/-1', token: 'alice', body: { status: 'edited' }, expectStatus: 404 },
  { name: 'statuses: edit with a write-less token', method: 'PUT', path: '/api/v1/statuses/{aliceStatus}', token: 'read', body: { status: 'edited' }, expectStatus: 403 },
  { name: 'statuses: delete someone else’s status', method: 'DELETE', path: '/api/v1/statuses/{bobStatus}', token: 'alice', expectStatus: 404 },
  { name: 'statuses: delete a malformed id', method: 'DELETE', path: '/api/v1/statuses/99999999999999999999999', token: 'alice', expectStatus: 404 },
  { name: 'statuses: delete an unknown id', method: 'DELETE', path: `/api/v1/statuses/${UNKNOWN_ID}`, token: 'alice', expectStatus: 404 },
  { name: 'statuses: delete without a token', method: 'DELETE', path: '/api/v1/statuses/{aliceStatus}', expectStatus: 401 },
  { name: 'statuses: delete with a read-only token', method: 'DELETE', path: '/api/v1/statuses/{aliceStatus}', token: 'read', expectStatus: 403 },

  // ---- status actions
  { name: 'actions: favourite a malformed id', method: 'POST', path: '/api/v1/statuses/abc/favourite', token: 'alice', expectStatus: 404 },
  { name: 'actions: favourite an unknown id', method: 'POST', path: `/api/v1/statuses/${UNKNOWN_ID}/favourite`, token: 'alice', expectStatus: 404 },
  { name: 'actions: favourite a status the viewer cannot see', method: 'POST', path: '/api/v1/statuses/{bobPrivate}/favourite', token: 'alice', expectStatus: 404 },
  { name: 'actions: favourite with a read-only token', method: 'POST', path: '/api/v1/statuses/{bobStatus}/favourite', token: 'read', expectStatus: 403 },
  { name: 'actions: bookmark with an app-only token', method: 'POST', path: '/api/v1/statuses/{bobStatus}/bookmark', token: 'app', expectStatus: 422 },
  { name: 'actions: reblog with a bad visibility', method: 'POST', path: '/api/v1/statuses/{bobStatus}/reblog', token: 'alice', body: { visibility: 'loud' }, expectStatus: 422 },
  { name: 'actions: reblog a 1.5 id', method: 'POST', path: '/api/v1/statuses/1.5/reblog', token: 'alice', expectStatus: 404 },
  { name: 'actions: reblog with a malformed JSON body', method: 'POST', path: '/api/v1/statuses/{bobStatus}/reblog', token: 'alice', headers: json, body: '{visibility: public}', expectStatus: 400 },
  { name: 'actions: unknown action', method: 'POST', path: '/api/v1/statuses/{bobStatus}/frobnicate', token: 'alice', expectStatus: 404 },

  // ---- accounts
  ...BAD_IDS.map((id): Case => ({ name: `accounts: show malformed id ${id}`, method: 'GET', path: `/api/v1/accounts/${id}`, expectStatus: 404 })),
  { name: 'accounts: show unknown id', method: 'GET', path: `/api/v1/accounts/${UNKNOWN_ID}`, token: 'alice', expectStatus: 404 },
  { name: 'accounts: statuses of a malformed id', method: 'GET', path: '/api/v1/accounts/abc/statuses', expectStatus: 404 },
  { name: 'accounts: statuses with limit=abc', method: 'GET', path: '/api/v1/accounts/{aliceId}/statuses?limit=abc', expectStatus: 422 },
  { name: 'accounts: statuses with max_id=abc', method: 'GET', path: '/api/v1/accounts/{aliceId}/statuses?max_id=abc', expectStatus: 422 },
  { name: 'accounts: followers of an unknown id', method: 'GET', path: `/api/v1/accounts/${UNKNOWN_ID}/followers`, expectStatus: 404 },
  { name: 'accounts: following with limit=-5', method: 'GET', path: '/api/v1/accounts/{aliceId}/following?limit=-5', expectStatus: 422 },
  { name: 'accounts: lookup without acct', method: 'GET', path: '/api/v1/accounts/lookup', expectStatus: 400 },
  { name: 'accounts: lookup of nobody', method: 'GET', path: '/api/v1/accounts/lookup?acct=nobody_here', expectStatus: 404 },
  { name: 'accounts: verify_credentials without a token', method: 'GET', path: '/api/v1/accounts/verify_credentials', expectStatus: 401 },
  { name: 'accounts: verify_credentials with an app-only token', method: 'GET', path: '/api/v1/accounts/verify_credentials', token: 'app', expectStatus: 422 },
  { name: 'accounts: verify_credentials with Basic authorization', method: 'GET', path: '/api/v1/accounts/verify_credentials', headers: { Authorization: 'Basic Zm9vOmJhcg==' }, expectStatus: 401 },
  { name: 'accounts: update_credentials with a read-only token', method: 'PATCH', path: '/api/v1/accounts/update_credentials', token: 'read', body: { display_name: 'x' }, expectStatus: 403 },
  { name: 'accounts: update_credentials with locked as an object', method: 'PATCH', path: '/api/v1/accounts/update_credentials', token: 'alice', body: { locked: { on: true } }, expectStatus: 422 },
  { name: 'accounts: update_credentials with a bad privacy', method: 'PATCH', path: '/api/v1/accounts/update_credentials', token: 'alice', body: { source: { privacy: 'secret' } }, expectStatus: 422 },
  { name: 'accounts: update_credentials with a bad language', method: 'PATCH', path: '/api/v1/accounts/update_credentials', token: 'alice', body: { source: { language: 'english' } }, expectStatus: 422 },
  { name: 'accounts: update_credentials with a 31-character name', method: 'PATCH', path: '/api/v1/accounts/update_credentials', token: 'alice', body: { display_name: 'n'.repeat(31), note: 'changed' }, expectStatus: 422 },
  { name: 'accounts: update_credentials with a display_name number', method: 'PATCH', path: '/api/v1/accounts/update_credentials', token: 'alice', body: { display_name: 42 }, expectStatus: 422 },

  // ---- registration
  { name: 'register: without a token', method: 'POST', path: '/api/v1/accounts', body: { username: 'newbie1', email: 'newbie1@example.test', password: PASSWORD, agreement: true }, expectStatus: 401 },
  { name: 'register: taken username', method: 'POST', path: '/api/v1/accounts', token: 'app', body: { username: '{aliceName}', email: 'other@example.test', password: PASSWORD, agreement: true }, expectStatus: 422 },
  { name: 'register: taken username in other case', method: 'POST', path: '/api/v1/accounts', token: 'app', body: { username: '{aliceNameUpper}', email: 'other2@example.test', password: PASSWORD, agreement: true }, expectStatus: 422 },
  { name: 'register: taken email', method: 'POST', path: '/api/v1/accounts', token: 'app', body: { username: 'newbie2', email: '{aliceName}@example.test', password: PASSWORD, agreement: true }, expectStatus: 422 },
  { name: 'register: bad email', method: 'POST', path: '/api/v1/accounts', token: 'app', body: { username: 'newbie3', email: 'not-an-email', password: PASSWORD, agreement: true }, expectStatus: 422 },
  { name: 'register: short password', method: 'POST', path: '/api/v1/accounts', token: 'app', body: { username: 'newbie4', email: 'newbie4@example.test', password: 'short', agreement: true }, expectStatus: 422 },
  { name: 'register: missing agreement', method: 'POST', path: '/api/v1/accounts', token: 'app', body: { username: 'newbie5', email: 'newbie5@example.test', password: PASSWORD }, expectStatus: 422 },
  { name: 'register: agreement false', method: 'POST', path: '/api/v1/accounts', token: 'app', headers: form, body: `username=newbie6&email=newbie6%40example.test&password=${encodeURIComponent(PASSWORD)}&agreement=false`, expectStatus: 422 },
  { name: 'register: bad username', method: 'POST', path: '/api/v1/accounts', token: 'app', body: { username: 'no spaces!', email: 'newbie7@example.test', password: PASSWORD, agreement: true }, expectStatus: 422 },
  { name: 'register: reserved username', method: 'POST', path: '/api/v1/accounts', token: 'app', body: { username: 'admin', email: 'newbie8@example.test', password: PASSWORD, agreement: true }, expectStatus: 422 },
  { name: 'register: username as a number', method: 'POST', path: '/api/v1/accounts', token: 'app', body: { username: 12345, email: 'newbie9@example.test', password: PASSWORD, agreement: true }, expectStatus: 422 },
  { name: 'register: with a read-only token', method: 'POST', path: '/api/v1/accounts', token: 'read', body: { username: 'newbie10', email: 'newbie10@example.test', password: PASSWORD, agreement: true }, expectStatus: 403 },

  // ---- relationships, follow, block, mute
  { name: 'relationships: without a token', method: 'GET', path: '/api/v1/accounts/relationships?id[]={bobId}', expectStatus: 401 },
  { name: 'relationships: with a write-only token', method: 'GET', path: '/api/v1/accounts/relationships?id[]={bobId}', token: 'write', expectStatus: 403 },
  { name: 'follow: yourself', method: 'POST', path: '/api/v1/accounts/{aliceId}/follow', token: 'alice', expectStatus: 403 },
  { name: 'follow: a malformed id', method: 'POST', path: '/api/v1/accounts/abc/follow', token: 'alice', expectStatus: 404 },
  { name: 'follow: an unknown id', method: 'POST', path: `/api/v1/accounts/${UNKNOWN_ID}/follow`, token: 'alice', expectStatus: 404 },
  { name: 'follow: reblogs is not a boolean', method: 'POST', path: '/api/v1/accounts/{bobId}/follow', token: 'alice', body: { reblogs: 'maybe' }, expectStatus: 422 },
  { name: 'follow: notify is an object', method: 'POST', path: '/api/v1/accounts/{bobId}/follow', token: 'alice', body: { notify: { a: 1 } }, expectStatus: 422 },
  { name: 'follow: with a read-only token', method: 'POST', path: '/api/v1/accounts/{bobId}/follow', token: 'read', expectStatus: 403 },
  { name: 'follow: with an app-only token', method: 'POST', path: '/api/v1/accounts/{bobId}/follow', token: 'app', expectStatus: 422 },
  { name: 'unfollow: an unknown id', method: 'POST', path: `/api/v1/accounts/${UNKNOWN_ID}/unfollow`, token: 'alice', expectStatus: 404 },
  { name: 'block: a -1 id', method: 'POST', path: '/api/v1/accounts/-1/block', token: 'alice', expectStatus: 404 },
  { name: 'block: with a read-only token', method: 'POST', path: '/api/v1/accounts/{bobId}/block', token: 'read', expectStatus: 403 },
  { name: 'mute: a negative duration', method: 'POST', path: '/api/v1/accounts/{bobId}/mute', token: 'alice', body: { duration: -5 }, expectStatus: 422 },
  { name: 'mute: a non-numeric duration', method: 'POST', path: '/api/v1/accounts/{bobId}/mute', token: 'alice', body: { duration: 'forever' }, expectStatus: 422 },
  { name: 'mute: notifications is not a boolean', method: 'POST', path: '/api/v1/accounts/{bobId}/mute', token: 'alice', body: { notifications: 'perhaps' }, expectStatus: 422 },
  { name: 'mute: an unknown id', method: 'POST', path: `/api/v1/accounts/${UNKNOWN_ID}/mute`, token: 'alice', expectStatus: 404 },
  { name: 'blocks: limit=-5', method: 'GET', path: '/api/v1/blocks?limit=-5', token: 'alice', expectStatus: 422 },
  { name: 'mutes: without a token', method: 'GET', path: '/api/v1/mutes', expectStatus: 401 },

  // ---- follow requests
  { name: 'follow_requests: authorize a request that does not exist', method: 'POST', path: '/api/v1/follow_requests/{bobId}/authorize', token: 'alice', expectStatus: 404 },
  { name: 'follow_requests: reject a request that does not exist', method: 'POST', path: '/api/v1/follow_requests/{bobId}/reject', token: 'alice', expectStatus: 404 },
  { name: 'follow_requests: authorize a malformed id', method: 'POST', path: '/api/v1/follow_requests/abc/authorize', token: 'alice', expectStatus: 404 },
  { name: 'follow_requests: authorize with a read-only token', method: 'POST', path: '/api/v1/follow_requests/{bobId}/authorize', token: 'read', expectStatus: 403 },
  { name: 'follow_requests: list without a token', method: 'GET', path: '/api/v1/follow_requests', expectStatus: 401 },

  // ---- timelines
  { name: 'timelines: home without a token', method: 'GET', path: '/api/v1/timelines/home', expectStatus: 401 },
  { name: 'timelines: home with a write-only token', method: 'GET', path: '/api/v1/timelines/home', token: 'write', expectStatus: 403 },
  { name: 'timelines: home with an app-only token', method: 'GET', path: '/api/v1/timelines/home', token: 'app', expectStatus: 422 },
  { name: 'timelines: home with a revoked token', method: 'GET', path: '/api/v1/timelines/home', token: 'revoked', expectStatus: 401 },
  { name: 'timelines: home with Basic authorization', method: 'GET', path: '/api/v1/timelines/home', headers: { Authorization: 'Basic Zm9vOmJhcg==' }, expectStatus: 401 },
  { name: 'timelines: home with limit=abc', method: 'GET', path: '/api/v1/timelines/home?limit=abc', token: 'alice', expectStatus: 422 },
  { name: 'timelines: home with limit=-5', method: 'GET', path: '/api/v1/timelines/home?limit=-5', token: 'alice', expectStatus: 422 },
  { name: 'timelines: home with max_id=abc', method: 'GET', path: '/api/v1/timelines/home?max_id=abc', token: 'alice', expectStatus: 422 },
  { name: 'timelines: public with limit=0', method: 'GET', path: '/api/v1/timelines/public?limit=0', expectStatus: 422 },
  { name: 'timelines: public with limit=1.5', method: 'GET', path: '/api/v1/timelines/public?limit=1.5', expectStatus: 422 },
  { name: 'timelines: public with local=maybe', method: 'GET', path: '/api/v1/timelines/public?local=maybe', expectStatus: 422 },
  { name: 'timelines: public with an unknown token', method: 'GET', path: '/api/v1/timelines/public', token: 'unknown', expectStatus: 401 },
  { name: 'timelines: tag that is not a tag', method: 'GET', path: '/api/v1/timelines/tag/not%20a%20tag', expectStatus: 404 },
  { name: 'timelines: list that does not exist', method: 'GET', path: '/api/v1/timelines/list/1', token: 'alice', expectStatus: 404 },
  { name: 'favourites: limit=abc', method: 'GET', path: '/api/v1/favourites?limit=abc', token: 'alice', expectStatus: 422 },
  { name: 'bookmarks: with a write-only token', method: 'GET', path: '/api/v1/bookmarks', token: 'write', expectStatus: 403 },

  // ---- markers
  { name: 'markers: malformed last_read_id', method: 'POST', path: '/api/v1/markers', token: 'alice', body: { home: { last_read_id: 'abc' } }, expectStatus: 422 },
  { name: 'markers: one good, one malformed (no partial write)', method: 'POST', path: '/api/v1/markers', token: 'alice', body: { home: { last_read_id: '{bobStatus}' }, notifications: { last_read_id: '-1' } }, expectStatus: 422 },
  { name: 'markers: missing last_read_id', method: 'POST', path: '/api/v1/markers', token: 'alice', body: { home: {} }, expectStatus: 400 },
  { name: 'markers: home is a string', method: 'POST', path: '/api/v1/markers', token: 'alice', body: { home: 'latest' }, expectStatus: 422 },
  { name: 'markers: JSON array body', method: 'POST', path: '/api/v1/markers', token: 'alice', body: [{ home: { last_read_id: '1' } }], expectStatus: 400 },
  { name: 'markers: read-only token', method: 'POST', path: '/api/v1/markers', token: 'read', body: { home: { last_read_id: '{bobStatus}' } }, expectStatus: 403 },
  { name: 'markers: read without a token', method: 'GET', path: '/api/v1/markers?timeline[]=home', expectStatus: 401 },

  // ---- apps
  { name: 'apps: missing client_name', method: 'POST', path: '/api/v1/apps', body: { redirect_uris: OOB }, expectStatus: 422 },
  { name: 'apps: client_name is a number', method: 'POST', path: '/api/v1/apps', body: { client_name: 7, redirect_uris: OOB }, expectStatus: 422 },
  { name: 'apps: client_name too long', method: 'POST', path: '/api/v1/apps', body: { client_name: 'n'.repeat(61), redirect_uris: OOB }, expectStatus: 422 },
  { name: 'apps: missing redirect_uris', method: 'POST', path: '/api/v1/apps', body: { client_name: 'x' }, expectStatus: 422 },
  { name: 'apps: relative redirect uri', method: 'POST', path: '/api/v1/apps', body: { client_name: 'x', redirect_uris: '/callback' }, expectStatus: 422 },
  { name: 'apps: javascript: redirect uri', method: 'POST', path: '/api/v1/apps', body: { client_name: 'x', redirect_uris: 'javascript:alert(1)' }, expectStatus: 422 },
  { name: 'apps: redirect uri with a fragment', method: 'POST', path: '/api/v1/apps', body: { client_name: 'x', redirect_uris: ['https://ok.example/cb', 'https://ok.example/cb#frag'] }, expectStatus: 422 },
  { name: 'apps: redirect_uris is an object', method: 'POST', path: '/api/v1/apps', body: { client_name: 'x', redirect_uris: { uri: OOB } }, expectStatus: 422 },
  { name: 'apps: unknown scope', method: 'POST', path: '/api/v1/apps', body: { client_name: 'x', redirect_uris: OOB, scopes: 'read bogus' }, expectStatus: 422 },
  { name: 'apps: bad website', method: 'POST', path: '/api/v1/apps', body: { client_name: 'x', redirect_uris: OOB, website: 'ftp://example.test' }, expectStatus: 422 },
  { name: 'apps: malformed JSON', method: 'POST', path: '/api/v1/apps', headers: json, body: '{"client_name":', expectStatus: 400 },
  { name: 'apps: verify_credentials without a token', method: 'GET', path: '/api/v1/apps/verify_credentials', expectStatus: 401 },
  { name: 'apps: verify_credentials with a revoked token', method: 'GET', path: '/api/v1/apps/verify_credentials', token: 'revoked', expectStatus: 401 },

  // ---- oauth/token
  { name: 'token: unsupported grant_type', method: 'POST', path: '/oauth/token', body: { grant_type: 'implicit', client_id: '{clientId}', client_secret: '{clientSecret}' }, expectStatus: 400 },
  { name: 'token: missing grant_type', method: 'POST', path: '/oauth/token', body: { client_id: '{clientId}', client_secret: '{clientSecret}' }, expectStatus: 400 },
  { name: 'token: wrong client_secret', method: 'POST', path: '/oauth/token', body: { grant_type: 'client_credentials', client_id: '{clientId}', client_secret: 'wrong' }, expectStatus: 401 },
  { name: 'token: unknown client_id', method: 'POST', path: '/oauth/token', body: { grant_type: 'client_credentials', client_id: 'nobody', client_secret: 'wrong' }, expectStatus: 401 },
  { name: 'token: wrong Basic client credentials', method: 'POST', path: '/oauth/token', headers: { ...form, Authorization: 'Basic {basicWrongSecret}' }, body: 'grant_type=client_credentials', expectStatus: 401 },
  { name: 'token: unknown scope', method: 'POST', path: '/oauth/token', body: { grant_type: 'client_credentials', client_id: '{clientId}', client_secret: '{clientSecret}', scope: 'read bogus' }, expectStatus: 400 },
  { name: 'token: scope beyond the app', method: 'POST', path: '/oauth/token', body: { grant_type: 'client_credentials', client_id: '{clientId}', client_secret: '{clientSecret}', scope: 'admin:read' }, expectStatus: 400 },
  { name: 'token: bad authorization code', method: 'POST', path: '/oauth/token', body: { grant_type: 'authorization_code', client_id: '{clientId}', client_secret: '{clientSecret}', code: 'not-a-code', redirect_uri: REDIRECT, code_verifier: VERIFIER }, expectStatus: 400 },
  { name: 'token: missing authorization code', method: 'POST', path: '/oauth/token', body: { grant_type: 'authorization_code', client_id: '{clientId}', client_secret: '{clientSecret}', redirect_uri: REDIRECT }, expectStatus: 400 },
  { name: 'token: wrong PKCE verifier', method: 'POST', path: '/oauth/token', body: { grant_type: 'authorization_code', client_id: '{clientId}', client_secret: '{clientSecret}', code: '{code}', redirect_uri: REDIRECT, code_verifier: 'w'.repeat(50) }, expectStatus: 400 },
  { name: 'token: missing PKCE verifier', method: 'POST', path: '/oauth/token', body: { grant_type: 'authorization_code', client_id: '{clientId}', client_secret: '{clientSecret}', code: '{code}', redirect_uri: REDIRECT }, expectStatus: 400 },
  { name: 'token: code with another redirect_uri', method: 'POST', path: '/oauth/token', body: { grant_type: 'authorization_code', client_id: '{clientId}', client_secret: '{clientSecret}', code: '{code}', redirect_uri: OOB, code_verifier: VERIFIER }, expectStatus: 400 },
  { name: 'token: code redeemed by another app', method: 'POST', path: '/oauth/token', body: { grant_type: 'authorization_code', client_id: '{otherClientId}', client_secret: '{otherClientSecret}', code: '{code}', redirect_uri: REDIRECT, code_verifier: VERIFIER }, expectStatus: 400 },
  { name: 'token: wrong password', method: 'POST', path: '/oauth/token', body: { grant_type: 'password', client_id: '{clientId}', client_secret: '{clientSecret}', username: '{aliceName}', password: 'wrong password', scope: 'read' }, expectStatus: 400 },
  { name: 'token: password grant without a password', method: 'POST', path: '/oauth/token', body: { grant_type: 'password', client_id: '{clientId}', client_secret: '{clientSecret}', username: '{aliceName}' }, expectStatus: 400 },
  { name: 'token: grant_type is a number', method: 'POST', path: '/oauth/token', body: { grant_type: 5, client_id: '{clientId}', client_secret: '{clientSecret}' }, expectStatus: 400 },
  { name: 'token: malformed JSON', method: 'POST', path: '/oauth/token', headers: json, body: '{"grant_type":"password"', expectStatus: 400 },

  // ---- oauth/revoke
  { name: 'revoke: wrong client_secret', method: 'POST', path: '/oauth/revoke', body: { client_id: '{clientId}', client_secret: 'wrong', token: '{aliceToken}' }, expectStatus: 403 },
  { name: 'revoke: no client credentials', method: 'POST', path: '/oauth/revoke', body: { token: '{aliceToken}' }, expectStatus: 403 },
  { name: 'revoke: unknown client', method: 'POST', path: '/oauth/revoke', body: { client_id: 'nobody', client_secret: 'x', token: '{readToken}' }, expectStatus: 403 },

  // ---- oauth/authorize (asked for JSON)
  { name: 'authorize: missing client_id', method: 'GET', path: `/oauth/authorize?response_type=code&redirect_uri=${encodeURIComponent(OOB)}`, headers: acceptJson, expectStatus: 400 },
  { name: 'authorize: unknown client_id', method: 'GET', path: `/oauth/authorize?response_type=code&client_id=nobody&redirect_uri=${encodeURIComponent(OOB)}`, headers: acceptJson, expectStatus: 400 },
  { name: 'authorize: unregistered redirect_uri', method: 'GET', path: '/oauth/authorize?response_type=code&client_id={clientId}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb', headers: acceptJson, expectStatus: 400 },
  { name: 'authorize: unsupported response_type', method: 'GET', path: `/oauth/authorize?response_type=token&client_id={clientId}&redirect_uri=${encodeURIComponent(OOB)}`, headers: acceptJson, expectStatus: 400 },
  { name: 'authorize: unknown scope', method: 'GET', path: `/oauth/authorize?response_type=code&client_id={clientId}&redirect_uri=${encodeURIComponent(OOB)}&scope=read%20bogus`, headers: acceptJson, expectStatus: 400 },
  { name: 'authorize: scope beyond the app', method: 'GET', path: `/oauth/authorize?response_type=code&client_id={clientId}&redirect_uri=${encodeURIComponent(OOB)}&scope=admin%3Awrite`, headers: acceptJson, expectStatus: 400 },
  { name: 'authorize: unsupported code_challenge_method', method: 'GET', path: `/oauth/authorize?response_type=code&client_id={clientId}&redirect_uri=${encodeURIComponent(OOB)}&code_challenge=${'c'.repeat(43)}&code_challenge_method=S512`, headers: acceptJson, expectStatus: 400 },
  { name: 'authorize: malformed code_challenge', method: 'GET', path: `/oauth/authorize?response_type=code&client_id={clientId}&redirect_uri=${encodeURIComponent(OOB)}&code_challenge=short&code_challenge_method=S256`, headers: acceptJson, expectStatus: 400 },
  { name: 'authorize: post with an unknown client', method: 'POST', path: '/oauth/authorize', headers: { ...form, ...acceptJson }, body: `response_type=code&client_id=nobody&redirect_uri=${encodeURIComponent(OOB)}&username={aliceName}&password=${encodeURIComponent(PASSWORD)}`, expectStatus: 400 },

  // ---- instance, unknown routes and methods
  { name: 'instance: unknown token on a public route', method: 'GET', path: '/api/v1/instance', token: 'unknown', expectStatus: 401 },
  { name: 'instance: POST is not a route', method: 'POST', path: '/api/v1/instance', body: {}, expectStatus: 404 },
  { name: 'instance: unknown API version', method: 'GET', path: '/api/v3/instance', expectStatus: 404 },
  { name: 'routes: unknown API route', method: 'GET', path: '/api/v1/does_not_exist', token: 'alice', expectStatus: 404 },
  { name: 'routes: DELETE on an account', method: 'DELETE', path: '/api/v1/accounts/{bobId}', token: 'alice', expectStatus: 404 },
  { name: 'routes: unknown oauth route', method: 'POST', path: '/oauth/introspect', body: { token: 'x' }, expectStatus: 404 },
];

describe('bad input', () => {
  let server: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  const fixtures: Record<string, string> = {};
  const tokens: Partial<Record<TokenName, string>> = { unknown: 'this-token-was-never-issued' };
  const statuses = new Map<string, number>();
  let before: Map<string, { rows: number; digest: string }>;

  const fill = (s: string) => s.replace(/\{(\w+)\}/g, (m, key: string) => fixtures[key] ?? m);

  async function api(method: string, path: string, opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      headers['Content-Type'] ??= 'application/json';
    }
    const res = await fetch(`${server.url}${path}`, { method, headers, body, redirect: 'manual' });
    return res;
  }

  async function okJson<T = Record<string, unknown>>(res: Response): Promise<T> {
    const text = await res.text();
    if (!res.ok) throw new Error(`fixture request failed: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  /** Row count and a digest of every row, per table: a failed request must change neither. */
  async function snapshot(): Promise<Map<string, { rows: number; digest: string }>> {
    const db = server.ctx.db;
    const tables = (await db.introspection.getTables()).map((t) => t.name).sort();
    const out = new Map<string, { rows: number; digest: string }>();
    for (const name of tables) {
      const { rows } = await sql<Record<string, unknown>>`select * from ${sql.table(name)}`.execute(db);
      const lines = rows.map((r) => JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).sort();
      out.set(name, { rows: rows.length, digest: createHash('sha256').update(lines.join('\n')).digest('hex') });
    }
    return out;
  }

  beforeAll(async () => {
    server = await startTestServer({ bodyLimit: BODY_LIMIT });
    alice = await createUser(server.url);
    bob = await createUser(server.url);
    tokens.alice = alice.token;
    tokens.bob = bob.token;
    Object.assign(fixtures, {
      aliceId: alice.id,
      bobId: bob.id,
      aliceName: alice.username,
      aliceNameUpper: alice.username.toUpperCase(),
      aliceToken: alice.token,
    });

    fixtures.aliceStatus = (await okJson<{ id: string }>(await api('POST', '/api/v1/statuses', { token: alice.token, body: { status: 'alice says hi' } }))).id;
    fixtures.bobStatus = (await okJson<{ id: string }>(await api('POST', '/api/v1/statuses', { token: bob.token, body: { status: 'bob says hi' } }))).id;
    fixtures.bobPrivate = (await okJson<{ id: string }>(await api('POST', '/api/v1/statuses', { token: bob.token, body: { status: 'bob, followers only', visibility: 'private' } }))).id;

    // An app that may ask for everything, and tokens narrower than it.
    const app = await okJson<{ client_id: string; client_secret: string }>(
      await api('POST', '/api/v1/apps', { body: { client_name: 'bad-input', redirect_uris: [OOB, REDIRECT], scopes: 'read write follow' } }),
    );
    fixtures.clientId = app.client_id;
    fixtures.clientSecret = app.client_secret;
    const other = await okJson<{ client_id: string; client_secret: string }>(
      await api('POST', '/api/v1/apps', { body: { client_name: 'bad-input-other', redirect_uris: REDIRECT, scopes: 'read write follow' } }),
    );
    fixtures.basicWrongSecret = Buffer.from(`${app.client_id}:wrong`).toString('base64');
    fixtures.otherClientId = other.client_id;
    fixtures.otherClientSecret = other.client_secret;

    const grant = async (scope: string) =>
      (
        await okJson<{ access_token: string }>(
          await api('POST', '/oauth/token', {
            body: { grant_type: 'password', client_id: app.client_id, client_secret: app.client_secret, username: alice.username, password: PASSWORD, scope },
          }),
        )
      ).access_token;
    tokens.read = await grant('read');
    tokens.write = await grant('write');
    fixtures.readToken = tokens.read;
    tokens.revoked = await grant('read write');
    await okJson(await api('POST', '/oauth/revoke', { body: { client_id: app.client_id, client_secret: app.client_secret, token: tokens.revoked } }));
    tokens.app = (
      await okJson<{ access_token: string }>(
        await api('POST', '/oauth/token', { body: { grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret, scope: 'read write follow' } }),
      )
    ).access_token;

    // An authorization code bound to a PKCE challenge, for the token cases.
    const challenge = createHash('sha256').update(VERIFIER).digest('base64url');
    const authorized = await api('POST', '/oauth/authorize', {
      headers: form,
      body: new URLSearchParams({
        response_type: 'code',
        client_id: app.client_id,
        redirect_uri: REDIRECT,
        scope: 'read',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        username: alice.username,
        password: PASSWORD,
      }).toString(),
    });
    expect(authorized.status).toBe(302);
    const code = new URL(authorized.headers.get('location')!).searchParams.get('code');
    expect(code).toBeTruthy();
    fixtures.code = code!;

    // Background work from the fixtures (fan-out) must be done before the snapshot.
    await server.worker.drain();
    before = await snapshot();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('has a large table of cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(70);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(c.headers ?? {})) headers[k] = fill(v);
    if (c.token) headers.Authorization = `Bearer ${tokens[c.token]}`;
    const body = c.body === undefined ? undefined : fill(typeof c.body === 'string' ? c.body : JSON.stringify(c.body));
    if (body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';

    const res = await fetch(`${server.url}${fill(c.path)}`, { method: c.method, headers, body, redirect: 'manual' });
    statuses.set(c.name, res.status);
    const text = await res.text();
    expect(res.status, text.slice(0, 300)).toBe(c.expectStatus);
    expect(res.headers.get('content-type') ?? '').toMatch(/^application\/json/);
    const parsed = JSON.parse(text) as { error?: unknown };
    expect(typeof parsed.error).toBe('string');
    expect((parsed.error as string).length).toBeGreaterThan(0);
  });

  it('answered no case with a 5xx', () => {
    expect(statuses.size).toBe(cases.length);
    const failures = [...statuses].filter(([, status]) => status >= 500);
    expect(failures).toEqual([]);
  });

  it('left every table as it was', async () => {
    const after = await snapshot();
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [table, was] of before) {
      const now = after.get(table)!;
      expect(now.rows, `${table} row count`).toBe(was.rows);
      expect(now.digest, `${table} contents`).toBe(was.digest);
    }
    expect(after.get('oauth_tokens')!.rows).toBe(before.get('oauth_tokens')!.rows);
    // The code the token cases tried and failed to redeem is still good: failures do not burn it.
    const res = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ grant_type: 'authorization_code', client_id: fixtures.clientId, client_secret: fixtures.clientSecret, code: fixtures.code, redirect_uri: REDIRECT, code_verifier: VERIFIER }),
    });
    expect(res.status).toBe(200);
  });
});
