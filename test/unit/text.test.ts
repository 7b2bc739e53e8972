import { describe, expect, it } from 'vitest';
import { countLength, extract, renderHtml, tokenize } from '../../src/domain/text.js';

const ctx = {
  baseUrl: 'https://starling.test',
  domain: 'starling.test',
  mentions: new Map([['alice', { username: 'alice', url: 'https://starling.test/@alice' }]]),
};

describe('post text', () => {
  it('finds mentions, hashtags and links', () => {
    const { mentions, tags, links } = extract('Hi @alice and @bob@remote.example, see https://example.com/a?b=c. #News #news #123 #ok_go');
    expect(mentions).toEqual(['alice', 'bob@remote.example']);
    expect(tags).toEqual(['news', 'ok_go']);
    expect(links).toEqual(['https://example.com/a?b=c']);
  });

  it('does not take e-mail addresses for mentions or URL fragments for hashtags', () => {
    const { mentions, tags } = extract('mail me at bob@example.com or see https://example.com/#anchor');
    expect(mentions).toEqual([]);
    expect(tags).toEqual([]);
  });

  it('keeps a closing bracket only when the URL opened one', () => {
    expect(extract('(see https://example.com/x)').links).toEqual(['https://example.com/x']);
    expect(extract('https://en.wikipedia.org/wiki/Foo_(bar)').links).toEqual(['https://en.wikipedia.org/wiki/Foo_(bar)']);
  });

  it('counts as Mastodon does: graphemes, URLs as 23, remote mentions by local part', () => {
    expect(countLength('hello')).toBe(5);
    expect(countLength('👩‍👩‍👧‍👦')).toBe(1);
    expect(countLength(`x https://example.com/${'a'.repeat(200)}`)).toBe(2 + 23);
    expect(countLength('@bob@remote.example')).toBe(4);
    expect(countLength('body', 'cw')).toBe(6);
  });

  it('escapes everything the author wrote', () => {
    const html = renderHtml('<script>alert("x")</script> & @alice #tag https://e.com/"onmouseover="x', ctx);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;');
    expect(html).not.toMatch(/"onmouseover="/);
    expect(html).toContain('class="u-url mention"');
    expect(html).toContain('href="https://starling.test/tags/tag"');
  });

  it('leaves unknown mentions as text and keeps paragraphs and line breaks', () => {
    expect(renderHtml('@nobody hi\nthere\n\nnext', ctx)).toBe('<p>@nobody hi<br />there</p><p>next</p>');
  });

  it('tokenizes without losing text', () => {
    const text = 'a @alice b #c d https://e.f g';
    expect(tokenize(text).map((t) => t.text).join('')).toBe(text);
  });
});
