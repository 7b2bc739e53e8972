/** Signing in (Starling's own sign-in page, through OAuth), signing up, and the OAuth callback. */
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { ErrorBox, PageHeading, Spinner } from '../components/common';
import { beginSignIn, completeSignIn, signUp } from '../lib/auth';
import { ApiError, describeError } from '../lib/http';
import { instance } from '../lib/instance';
import { Link, navigate, useLocation } from '../lib/router';
import { useStore } from '../lib/store';

export function SignInButton({ className = 'btn btn-primary', returnTo }: { className?: string; returnTo?: string }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      await beginSignIn(returnTo ?? location.pathname + location.search);
    } catch (err) {
      setError(describeError(err));
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" className={className} onClick={() => void go()} disabled={busy}>
        {busy ? 'Opening sign-in…' : 'Sign in'}
      </button>
      {error && <ErrorBox>{error}</ErrorBox>}
    </>
  );
}

export function Welcome() {
  const inst = useStore(instance);
  const open = inst?.registrations?.enabled !== false;
  return (
    <section className="welcome">
      <PageHeading>Welcome to {inst?.title ?? 'Starling'}</PageHeading>
      <p className="lead">{inst?.description || 'Short posts, replies, reposts and likes — a microblogging server that keeps going.'}</p>
      <div className="welcome-actions">
        <SignInButton returnTo="/" />
        {open && (
          <Link to="/signup" className="btn btn-ghost">
            Create an account
          </Link>
        )}
      </div>
      <p className="muted">
        Or have a look around: <Link to="/local">what people here are posting</Link>.
      </p>
    </section>
  );
}

export function SignUp() {
  const [form, setForm] = useState({ username: '', email: '', password: '', agreement: false });
  const [error, setError] = useState<{ message: string; fields: Record<string, string> } | null>(null);
  const [busy, setBusy] = useState(false);
  const errRef = useRef<HTMLDivElement>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signUp(form);
      navigate('/', { replace: true });
    } catch (err) {
      const fields: Record<string, string> = {};
      if (err instanceof ApiError && err.body && typeof err.body === 'object' && 'details' in err.body) {
        const details = (err.body as { details: Record<string, { description?: string; error?: string }[]> }).details;
        for (const [k, v] of Object.entries(details ?? {})) fields[k] = v.map((d) => d.description ?? d.error).join(' ');
      }
      setError({ message: describeError(err), fields });
      setBusy(false);
      requestAnimationFrame(() => errRef.current?.focus());
    }
  };

  const field = (name: 'username' | 'email' | 'password', label: string, type: string, auto: string, hint?: string) => (
    <div className="field">
      <label htmlFor={`su-${name}`}>{label}</label>
      <input
        id={`su-${name}`}
        name={name}
        type={type}
        autoComplete={auto}
        required
        minLength={name === 'password' ? 8 : undefined}
        value={form[name]}
        onChange={(e) => setForm({ ...form, [name]: e.target.value })}
        aria-invalid={Boolean(error?.fields[name])}
        aria-describedby={error?.fields[name] ? `su-${name}-err` : hint ? `su-${name}-hint` : undefined}
        autoCapitalize="none"
        spellCheck={false}
      />
      {hint && !error?.fields[name] && (
        <p className="hint" id={`su-${name}-hint`}>
          {hint}
        </p>
      )}
      {error?.fields[name] && (
        <p className="form-error" id={`su-${name}-err`}>
          {error.fields[name]}
        </p>
      )}
    </div>
  );

  return (
    <section className="auth-page">
      <PageHeading>Create an account</PageHeading>
      <form onSubmit={submit} className="auth-form" noValidate={false}>
        {error && (
          <div className="error-box" role="alert" tabIndex={-1} ref={errRef}>
            <p>{error.message}</p>
          </div>
        )}
        {field('username', 'Username', 'text', 'username', 'Letters, numbers and underscores. This is your @name.')}
        {field('email', 'E-mail address', 'email', 'email')}
        {field('password', 'Password', 'password', 'new-password', 'At least 8 characters.')}
        <div className="field checkbox">
          <input id="su-agreement" type="checkbox" required checked={form.agreement} onChange={(e) => setForm({ ...form, agreement: e.target.checked })} />
          <label htmlFor="su-agreement">I agree to this server's rules and terms.</label>
        </div>
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? 'Creating your account…' : 'Sign up'}
        </button>
      </form>
      <p className="muted">
        Already have an account? <SignInButton className="btn-link" returnTo="/" />
      </p>
    </section>
  );
}

export function AuthCallback() {
  const loc = useLocation();
  const [error, setError] = useState<string | null>(null);
  const started = useRef(false);
  useEffect(() => {
    if (started.current) return;
    started.current = true;
    completeSignIn(loc.search)
      .then((to) => navigate(to.startsWith('/auth/') ? '/' : to, { replace: true }))
      .catch((err) => setError(err instanceof Error && !(err instanceof ApiError) ? err.message : describeError(err)));
  }, [loc.search]);
  if (error)
    return (
      <section className="auth-page">
        <PageHeading>Sign-in didn't finish</PageHeading>
        <ErrorBox>{error}</ErrorBox>
        <SignInButton returnTo="/" />
      </section>
    );
  return <Spinner label="Signing you in" />;
}
