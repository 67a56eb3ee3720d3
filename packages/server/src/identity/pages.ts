/**
 * The server-rendered pages of sign-in: login, TOTP, sign-up, the device flow's code pages, errors. Every value
 * that reaches the HTML goes through `escapeHtml`; passwords and codes are never written back into a page.
 */

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

const STYLE =
  "body{font-family:system-ui,sans-serif;max-width:24rem;margin:3rem auto;padding:0 1rem}" +
  "label{display:block;margin:.75rem 0 .25rem}input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}" +
  "button{margin-top:1rem;padding:.5rem 1rem;font-size:1rem}.error{color:#b00020}.muted{color:#666;font-size:.9rem}";

/** A whole page around `body` (already HTML). */
export function page(title: string, body: string): string {
  return (
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${escapeHtml(title)} · Latchkey</title><style>${STYLE}</style></head>` +
    `<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`
  );
}

function error(message: string | undefined): string {
  return message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : "";
}

/** The email + password form of an interaction. */
export function loginPage(options: {
  uid: string;
  email?: string;
  error?: string;
  signup: boolean;
  deviceFlow: boolean;
  /** The sign-in is the browser dashboard's, not the command line's. */
  dashboard?: boolean;
}): string {
  const base = `/interaction/${encodeURIComponent(options.uid)}`;
  const what = options.deviceFlow
    ? "authorize the device that showed you the code"
    : options.dashboard
      ? "open the Latchkey dashboard"
      : "authorize the Latchkey command line";
  return page(
    "Sign in",
    `<p>Sign in to ${what}.</p>` +
      error(options.error) +
      `<form method="post" action="${escapeHtml(base)}/login" autocomplete="on">` +
      `<input type="hidden" name="prompt" value="login">` +
      `<label for="email">Email</label><input id="email" name="email" type="email" required autofocus value="${escapeHtml(options.email ?? "")}">` +
      `<label for="password">Password</label><input id="password" name="password" type="password" required autocomplete="current-password">` +
      `<button type="submit">Sign in</button></form>` +
      `<p class="muted"><a href="${escapeHtml(base)}/abort">Cancel</a>` +
      (options.signup ? ` · <a href="${escapeHtml(base)}/signup">Create an account</a>` : "") +
      `</p>`,
  );
}

/** The second step for an account with TOTP: the code from the authenticator app. */
export function totpPage(options: { uid: string; ticket: string; error?: string }): string {
  const base = `/interaction/${encodeURIComponent(options.uid)}`;
  return page(
    "Two-step verification",
    `<p>Enter the 6-digit code from your authenticator app.</p>` +
      error(options.error) +
      `<form method="post" action="${escapeHtml(base)}/totp">` +
      `<input type="hidden" name="ticket" value="${escapeHtml(options.ticket)}">` +
      `<label for="code">Code</label><input id="code" name="code" inputmode="numeric" pattern="[0-9 ]*" autocomplete="one-time-code" required autofocus>` +
      `<button type="submit">Verify</button></form>` +
      `<p class="muted"><a href="${escapeHtml(base)}/abort">Cancel</a></p>`,
  );
}

/** Open sign-up (only with --open-signup). */
export function signupPage(options: { uid: string; email?: string; error?: string }): string {
  const base = `/interaction/${encodeURIComponent(options.uid)}`;
  return page(
    "Create an account",
    error(options.error) +
      `<form method="post" action="${escapeHtml(base)}/signup">` +
      `<label for="email">Email</label><input id="email" name="email" type="email" required autofocus value="${escapeHtml(options.email ?? "")}">` +
      `<label for="password">Password</label><input id="password" name="new_password" type="password" required minlength="12" autocomplete="new-password">` +
      `<button type="submit">Create account</button></form>` +
      `<p class="muted"><a href="${escapeHtml(base)}">Back to sign in</a></p>`,
  );
}

/** A page that only says something (errors, rate limits, expired interactions). */
export function messagePage(title: string, message: string): string {
  return page(title, `<p>${escapeHtml(message)}</p>`);
}
