import { describe, expect, it } from 'vitest';
import {
  describeScope,
  pageCsp,
  pageLang,
  redirectSource,
  redirectWith,
  renderAuthorizePage,
  renderCodePage,
  renderMessagePage,
} from '../../src/http/oauth/pages.js';
import { basicCredentials } from '../../src/http/oauth/index.js';
import { checkRedirectUri, splitRedirectUris } from '../../src/http/mastodon/apps.js';

const HOSTILE = `<script>alert("x")</script><img src=x onerror='y'>&`;

function page(overrides: Partial<Parameters<typeof renderAuthorizePage>[0]> = {}) {
  return renderAuthorizePage({
    appName: 'Good App',
    appWebsite: null,
    scopes: ['read', 'write:statuses'],
    hidden: { response_type: 'code', client_id: 'abc', redirect_uri: 'https://app.example/cb', scope: 'read write:statuses', state: 's1' },
    action: '/oauth/authorize',
    ...overrides,
  });
}

describe('authorize page', () => {
  it('escapes a hostile application name everywhere it appears', () => {
    const html = page({ appName: HOSTILE, appWebsite: `https://x.example/"><script>` });
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<img');
    expect(html).not.toMatch(/onerror='/);
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).toContain('<title>Authorize &lt;script&gt;');
  });

  it('escapes hidden fields so a state cannot break out of its attribute', () => {
    const html = page({ hidden: { state: `"><script>alert(1)</script>`, client_id: `a'b` } });
    expect(html).toContain('<input type="hidden" name="state" value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">');
    expect(html).toContain('<input type="hidden" name="client_id" value="a&#39;b">');
    expect(html).not.toContain('<script>');
  });

  it('leaves out absent hidden fields', () => {
    const html = page({ hidden: { client_id: 'abc', state: undefined, code_challenge: '' } });
    expect(html).toContain('name="client_id"');
    expect(html).not.toContain('name="state"');
    expect(html).not.toContain('name="code_challenge"');
  });

  it('lists the requested scopes and has labelled fields and both buttons', () => {
    const html = page();
    expect(html).toContain('<code>read</code>');
    expect(html).toContain('<code>write:statuses</code>');
    expect(html).toContain('<label for="username">');
    expect(html).toContain('id="username" name="username" autocomplete="username"');
    expect(html).toContain('<label for="password">');
    expect(html).toContain('id="password" name="password" autocomplete="current-password"');
    expect(html).toContain('name="decision" value="approve"');
    expect(html).toMatch(/name="decision" value="deny" formnovalidate/);
    expect(html).toContain('<form method="post" action="/oauth/authorize">');
    expect(html).toContain('<html lang="en">');
  });

  it('shows an error as an alert, keeps the login and never the password', () => {
    const html = page({ error: 'Wrong username/e-mail or password', login: `al"ice` });
    expect(html).toContain('<p class="error" id="form-error" role="alert">Wrong username/e-mail or password</p>');
    expect(html).toContain('value="al&quot;ice"');
    expect(html).toContain('aria-describedby="form-error"');
    expect(html).not.toMatch(/type="password"[^>]*value=/);
  });

  it('uses only a well-formed lang', () => {
    expect(page({ lang: 'pt-BR' })).toContain('<html lang="pt-BR">');
    expect(page({ lang: `en" onload="x` })).toContain('<html lang="en">');
    expect(pageLang(undefined)).toBe('en');
  });
});

describe('other pages', () => {
  it('escapes the code page and message page', () => {
    const code = renderCodePage({ appName: HOSTILE, code: 'abc<def' });
    expect(code).not.toContain('<script>');
    expect(code).toContain('abc&lt;def');
    const msg = renderMessagePage({ title: '<b>t</b>', message: HOSTILE });
    expect(msg).not.toContain('<b>t</b>');
    expect(msg).not.toContain('<script>');
  });
});

describe('describeScope', () => {
  it('describes top-level and sub-scopes', () => {
    expect(describeScope('read')).toBe('Read all your account data');
    expect(describeScope('write:statuses')).toBe('Modify your statuses');
    expect(describeScope('read:follows')).toBe('Read your follows');
  });
});

describe('CSP', () => {
  it('allows the form to lead to the redirect origin only', () => {
    expect(pageCsp('https://app.example:8443/cb?x=1')).toBe(
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https://app.example:8443; frame-ancestors 'none'; base-uri 'none'",
    );
    expect(pageCsp('urn:ietf:wg:oauth:2.0:oob')).toContain("form-action 'self';");
    expect(pageCsp()).toContain("form-action 'self';");
  });

  it('uses the scheme for custom-scheme redirect URIs', () => {
    expect(redirectSource('myapp://oauth/callback')).toBe('myapp:');
    expect(redirectSource('com.example.app:/cb')).toBe('com.example.app:');
  });

  it('never lets a redirect URI inject directives', () => {
    expect(redirectSource('not a uri; script-src *')).toBeNull();
    const csp = pageCsp(`https://a.example/; script-src *`);
    expect(csp).not.toContain('script-src');
  });
});

describe('redirectWith', () => {
  it('adds parameters, keeps an existing query and drops undefined values', () => {
    expect(redirectWith('https://app.example/cb', { code: 'c1', state: 'a b&c' })).toBe('https://app.example/cb?code=c1&state=a+b%26c');
    expect(redirectWith('https://app.example/cb?x=1', { code: 'c1', state: undefined })).toBe('https://app.example/cb?x=1&code=c1');
    expect(redirectWith('myapp://callback', { code: 'c1' })).toBe('myapp://callback?code=c1');
  });
});

describe('basicCredentials', () => {
  it('decodes client_secret_basic, form-decoding each part', () => {
    const header = `Basic ${Buffer.from('my%20id:s%3Acret').toString('base64')}`;
    expect(basicCredentials(header)).toEqual({ clientId: 'my id', clientSecret: 's:cret' });
    expect(basicCredentials(`Basic ${Buffer.from('id:sec:ret').toString('base64')}`)).toEqual({ clientId: 'id', clientSecret: 'sec:ret' });
  });

  it('ignores other schemes and malformed values', () => {
    expect(basicCredentials(undefined)).toBeNull();
    expect(basicCredentials('Bearer abc')).toBeNull();
    expect(basicCredentials(`Basic ${Buffer.from('nocolon').toString('base64')}`)).toBeNull();
  });
});

describe('app registration input', () => {
  it('splits redirect URIs given as a string or an array', () => {
    expect(splitRedirectUris('https://a.example/cb\nhttps://b.example/cb https://a.example/cb')).toEqual(['https://a.example/cb', 'https://b.example/cb']);
    expect(splitRedirectUris(['urn:ietf:wg:oauth:2.0:oob', 'myapp://cb'])).toEqual(['urn:ietf:wg:oauth:2.0:oob', 'myapp://cb']);
    expect(splitRedirectUris(undefined)).toEqual([]);
  });

  it('accepts absolute URIs and OOB, refuses the rest with Mastodon text', () => {
    expect(() => checkRedirectUri('urn:ietf:wg:oauth:2.0:oob')).not.toThrow();
    expect(() => checkRedirectUri('https://app.example/cb')).not.toThrow();
    expect(() => checkRedirectUri('myapp://cb')).not.toThrow();
    expect(() => checkRedirectUri('/relative/cb')).toThrow('Validation failed: Redirect URI must be an absolute URI.');
    expect(() => checkRedirectUri('https://app.example/cb#frag')).toThrow('fragment');
    expect(() => checkRedirectUri('javascript:alert(1)')).toThrow('forbidden');
  });
});
