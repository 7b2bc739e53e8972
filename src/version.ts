/** Starling's own version, and the Mastodon API version whose behaviour it follows (clients gate features on it). */
export const STARLING_VERSION = '0.1.0';
export const MASTODON_COMPAT_VERSION = '4.3.0';
