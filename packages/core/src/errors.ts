/**
 * The one error catalogue. Every error Latchkey shows a user comes from here: a stable code, a message saying
 * what happened and a hint saying what to do. `docs/errors.md` is generated from this table
 * (`npm run docs`), and a test fails when the two disagree.
 */

/** Process exit codes. Scripts rely on them, so they never change meaning. */
export const ExitCode = {
  ok: 0,
  /** Something is wrong that the user can fix (bad state, missing credential, failed check). */
  failure: 1,
  /** The command line itself is wrong. */
  usage: 2,
  /** The OS keychain or file store could not be used. */
  keystore: 3,
  /** Stored data failed to decrypt or parse. */
  integrity: 4,
  /** A bug: an exception nobody anticipated. */
  internal: 70,
  /** The user cancelled at a prompt (Ctrl-C, Ctrl-D, Escape): the shell's 128 + SIGINT. */
  cancelled: 130,
  /** `latchkey run`: the program was found but could not be started (the shell's and env(1)'s 126). */
  commandNotExecutable: 126,
  /** `latchkey run`: the program was not found (the shell's and env(1)'s 127). */
  commandNotFound: 127,
} as const;

/** One catalogue entry: the default message, the hint and the exit code. */
export interface ErrorSpec {
  readonly summary: string;
  readonly message: string;
  readonly hint: string;
  readonly exitCode: number;
}

/** Every error code Latchkey can produce. */
export const errorCatalogue = {
  LK_USAGE: {
    summary: "The command line is not valid.",
    message: "Invalid command line.",
    hint: "Run `latchkey help <command>` to see the accepted arguments.",
    exitCode: ExitCode.usage,
  },
  LK_CANCELLED: {
    summary: "A prompt was cancelled (Ctrl-C, Ctrl-D, Escape or the end of input); nothing was changed.",
    message: "Cancelled at the prompt; nothing was changed.",
    hint: "Run the command again when you have the answer, or pass the value on stdin where the command accepts it.",
    exitCode: ExitCode.cancelled,
  },
  LK_CONFIG_INVALID: {
    summary: "An environment variable or configuration value has an unsupported value.",
    message: "A configuration value is not valid.",
    hint: "Correct the value named in the message; `latchkey doctor` lists the active configuration.",
    exitCode: ExitCode.usage,
  },
  LK_TOKEN_IN_ARGV: {
    summary:
      "A secret was passed as a command-line argument, where every process on the machine can read it.",
    message: "Secrets are not accepted as command-line arguments: they show in `ps` and shell history.",
    hint: "Pass it on stdin (`--token-stdin`), from a file (`--token-file FILE`), from the environment, or at the masked prompt.",
    exitCode: ExitCode.usage,
  },
  LK_SECRET_NOT_FOUND: {
    summary: "The keystore has no entry under the requested account.",
    message: "No such entry in the keystore.",
    hint: "Run `latchkey keystore list` to see the stored accounts.",
    exitCode: ExitCode.failure,
  },
  LK_INPUT_EMPTY: {
    summary:
      "A value was expected and none was given: nothing arrived on standard input, or an empty answer at a prompt was not confirmed.",
    message: "Nothing was read from standard input.",
    hint: 'Pipe the value in, e.g. `printf %s "$VALUE" | latchkey …`.',
    exitCode: ExitCode.usage,
  },
  LK_KEYRING_UNREACHABLE: {
    summary: "The OS keychain could not be reached (no D-Bus session, no Secret Service provider).",
    message: "The OS keychain is not reachable.",
    hint: "Start a desktop session or `gnome-keyring-daemon` inside a D-Bus session, or set LATCHKEY_KEYSTORE=file to use the encrypted file store.",
    exitCode: ExitCode.keystore,
  },
  LK_KEYRING_LOCKED: {
    summary: "The OS keychain is locked and could not be unlocked without a prompt.",
    message: "The OS keychain is locked.",
    hint: "Unlock your login keyring (log in to the desktop, or `gnome-keyring-daemon --unlock`) and try again.",
    exitCode: ExitCode.keystore,
  },
  LK_KEYRING_DENIED: {
    summary: "The OS keychain refused Latchkey access to the item or collection.",
    message: "The OS keychain denied access.",
    hint: "Allow Latchkey in your keychain's access prompt or policy, then try again.",
    exitCode: ExitCode.keystore,
  },
  LK_KEYRING_TIMEOUT: {
    summary: "The OS keychain did not answer within the time limit.",
    message: "The OS keychain did not answer in time.",
    hint: "A keychain prompt may be waiting on another screen; answer it, or restart the keyring daemon.",
    exitCode: ExitCode.keystore,
  },
  LK_KEYRING_FAILED: {
    summary: "The OS keychain reported an error Latchkey does not recognise.",
    message: "The OS keychain reported an error.",
    hint: "Run `latchkey doctor -v` for the keychain's own message.",
    exitCode: ExitCode.keystore,
  },
  LK_KEYSTORE_PROMOTED_UNAVAILABLE: {
    summary:
      "The file store's entries were moved into the OS keychain earlier, and the keychain is now unusable; Latchkey will not silently fall back to the file store.",
    message: "Your credentials live in the OS keychain, and it cannot be used right now.",
    hint: "Fix the keychain (see the cause above and `latchkey doctor`), or set LATCHKEY_KEYSTORE=file deliberately to use the file store.",
    exitCode: ExitCode.keystore,
  },
  LK_STORE_DECRYPT_FAILED: {
    summary: "The encrypted file store could not be decrypted with the key available.",
    message: "The encrypted file store could not be decrypted.",
    hint: "If you set LATCHKEY_PASSPHRASE, check it is the same passphrase as before. The file was left untouched.",
    exitCode: ExitCode.integrity,
  },
  LK_STORE_CORRUPT: {
    summary: "A Latchkey data file is truncated or not in a format Latchkey knows.",
    message: "A Latchkey data file is damaged.",
    hint: "The file was left untouched for recovery; restore it from a backup or move it aside.",
    exitCode: ExitCode.integrity,
  },
  LK_MACHINE_ID_MISSING: {
    summary: "The file store's key is bound to the machine id, and none could be read.",
    message: "No machine id could be read.",
    hint: "Set LATCHKEY_PASSPHRASE to protect the file store with a passphrase instead.",
    exitCode: ExitCode.keystore,
  },
  LK_DECRYPT_FAILED: {
    summary:
      "An encrypted envelope or wrapped key failed to decrypt. Deliberately opaque: wrong key, wrong context and tampering look the same.",
    message: "Decryption failed.",
    hint: "The data was encrypted with another key or for another context, or was modified.",
    exitCode: ExitCode.integrity,
  },
  LK_FORMAT_INVALID: {
    summary: "Encoded data (an envelope, a wrapped key, base64) is not in the exact expected form.",
    message: "The data is not in the expected format.",
    hint: "Check the value was copied whole, with no added whitespace or line breaks.",
    exitCode: ExitCode.integrity,
  },
  LK_FILE_SYMLINK: {
    summary: "A credential file or directory is a symbolic link; Latchkey never reads or writes through one.",
    message: "Refusing to use a symbolic link.",
    hint: "Remove the link (its target is untouched) and run the command again.",
    exitCode: ExitCode.failure,
  },
  LK_FILE_PERMISSIONS: {
    summary: "A credential file or directory is readable by other users, or owned by another user.",
    message: "Insecure permissions on a Latchkey file.",
    hint: "Run `chmod 600` on files and `chmod 700` on directories under LATCHKEY_HOME, owned by you.",
    exitCode: ExitCode.failure,
  },
  LK_FILE_IO: {
    summary: "A file under LATCHKEY_HOME could not be read or written.",
    message: "A Latchkey file could not be read or written.",
    hint: "Check that LATCHKEY_HOME is on a writable disk with free space.",
    exitCode: ExitCode.failure,
  },
  LK_LOCK_TIMEOUT: {
    summary: "Another Latchkey process held a file lock for too long.",
    message: "Timed out waiting for another Latchkey process.",
    hint: "Wait for the other command to finish; a lock left by a crashed process expires by itself within seconds.",
    exitCode: ExitCode.failure,
  },
  LK_DOCTOR_PROBLEMS: {
    summary: "`latchkey doctor` found at least one problem.",
    message: "Problems were found.",
    hint: "Apply the hint printed under each problem.",
    exitCode: ExitCode.failure,
  },
  LK_ENV_KEY_INVALID: {
    summary: "A secret's name is not a valid environment variable name.",
    message: "Invalid secret name.",
    hint: "Names start with a letter or underscore and contain only letters, digits and underscores (e.g. DATABASE_URL).",
    exitCode: ExitCode.usage,
  },
  LK_ENV_VALUE_INVALID: {
    summary:
      "A secret's value cannot be stored (it contains a NUL byte, which no environment variable can hold).",
    message: "Invalid secret value.",
    hint: "Remove the NUL byte; binary data can be stored base64-encoded.",
    exitCode: ExitCode.usage,
  },
  LK_ENV_KEY_RESERVED: {
    summary:
      "A secret would replace an environment variable that programs rely on to start or that decides which code they run (PATH, HOME, LD_PRELOAD, NODE_OPTIONS, LATCHKEY_…); setting one, or `run` with one in the vault (which may have come by `env pull`), needs --allow-override.",
    message:
      "That name is reserved: a secret by that name would replace the variable in every program `latchkey run` starts.",
    hint: "Choose another name, or pass --allow-override if replacing the variable is what you want (`latchkey env check` lists such secrets).",
    exitCode: ExitCode.usage,
  },
  LK_VAULT_TOO_LARGE: {
    summary:
      "A secret, an environment or the whole vault is larger than Latchkey accepts (1 MiB per value, 2 MiB per environment, 5 MiB per vault, so that every vault can be pushed), or the server refused a request as too large (413).",
    message: "The vault would be larger than Latchkey accepts.",
    hint: "Store large files outside the vault (e.g. keep a path or URL in it), remove values or environments you do not need, then try again.",
    exitCode: ExitCode.failure,
  },
  LK_ENV_NOT_FOUND: {
    summary: "The vault has no environment by that name.",
    message: "No such environment in this project's vault.",
    hint: "Run `latchkey env envs` to list the environments, or `latchkey env set --env NAME KEY` to create one.",
    exitCode: ExitCode.failure,
  },
  LK_ENV_KEY_NOT_FOUND: {
    summary: "The environment has no secret by that name.",
    message: "No such secret in this environment.",
    hint: "Run `latchkey env list` to see the names in this environment.",
    exitCode: ExitCode.failure,
  },
  LK_VAULT_DECRYPT_FAILED: {
    summary: "A local vault file could not be decrypted with this machine's vault key.",
    message: "The vault file could not be decrypted.",
    hint: "The file was left untouched and will not be overwritten. Restore it or its key from a backup, or move it aside to start afresh.",
    exitCode: ExitCode.integrity,
  },
  LK_VAULT_KEY_MISSING: {
    summary: "A vault file exists, but this machine's keystore holds no key for it.",
    message: "This machine has no key for the vault.",
    hint: "Restore the keystore entry from a backup, or pair this machine with one that has the vault. The vault file was left untouched.",
    exitCode: ExitCode.integrity,
  },
  LK_INTERNAL: {
    summary: "An unexpected error: a bug in Latchkey.",
    message: "An unexpected error occurred.",
    hint: "Run again with -v for detail, and report it with that output (it never contains secrets).",
    exitCode: ExitCode.internal,
  },
  LK_DOTENV_INVALID: {
    summary:
      "A .env file could not be parsed: a malformed line, an invalid variable name, an unclosed quote or a NUL character. Nothing from the file was imported.",
    message: "The .env file is not valid.",
    hint: "Fix the line and column named in the message. Quote values that contain spaces, `#` or quotes, and close every quote.",
    exitCode: ExitCode.usage,
  },
  LK_ENV_SCHEMA_INVALID: {
    summary:
      "The `envSchema` in latchkey.json is malformed: a bad variable name, an unknown property or format, a pattern that does not compile, or a default that breaks its own rule.",
    message: "The envSchema in latchkey.json is not valid.",
    hint: "Fix the entry named in the message; each variable takes only required, format, pattern, default, secret and description.",
    exitCode: ExitCode.usage,
  },
  LK_ENV_CHECK_FAILED: {
    summary:
      "One or more environment variables are missing or break the format or pattern that latchkey.json's `envSchema` declares for them.",
    message: "Environment variables do not satisfy the envSchema.",
    hint: "Set or correct each variable named in the message (`latchkey env set KEY`), or adjust its rule in latchkey.json.",
    exitCode: ExitCode.failure,
  },
  LK_RUN_NOT_FOUND: {
    summary:
      "`latchkey run` could not find the program to start. Exits 127, as a shell does for an unknown command.",
    message: "Could not start the program: no such program.",
    hint: "Check the program's name, that it is installed and that its directory is on PATH. For a script, check the interpreter in its #! line exists.",
    exitCode: ExitCode.commandNotFound,
  },
  LK_RUN_FAILED: {
    summary:
      "`latchkey run` found the program but could not start it (not executable, a directory, an environment variable no program can receive). Exits 126, as a shell does.",
    message: "Could not start the program.",
    hint: "Check the file is an executable program (`chmod +x` for a script) and that you may run it.",
    exitCode: ExitCode.commandNotExecutable,
  },
  LK_RUN_ENV_TOO_LARGE: {
    summary:
      "`latchkey run` did not start the program because its environment or arguments are more than the system passes to a program (Linux: 128 KiB per variable, a quarter of `ulimit -s` in total). Exits 126.",
    message: "The program's environment is larger than this system passes to a program.",
    hint: "Give large secrets to the program as files: `latchkey run --file KEY` (sets KEY_FILE to a private file's path) or `--mount NAME` (every secret in one file).",
    exitCode: ExitCode.commandNotExecutable,
  },
  LK_PROJECT_INVALID: {
    summary:
      "latchkey.json is not valid: not strict JSON (no comments, trailing commas or duplicate keys), not an object, or its `vault` is not a valid vault id.",
    message: "latchkey.json is not valid.",
    hint: "Fix latchkey.json at the line and column named in the message; Latchkey left the file untouched.",
    exitCode: ExitCode.failure,
  },
  LK_VAULT_ID_INVALID: {
    summary: "A vault id (from latchkey.json or LATCHKEY_VAULT_ID) is not safe to use as a file name.",
    message: "The vault id is not valid.",
    hint: "A vault id is 1 to 128 letters, digits, `-` or `_`, starting with a letter or digit (Latchkey creates UUIDs); correct LATCHKEY_VAULT_ID or the `vault` field of latchkey.json.",
    exitCode: ExitCode.usage,
  },
  LK_PROJECT_NOT_FOUND: {
    summary:
      "No vault applies here: no latchkey.json with a `vault` id in this directory or any parent, and LATCHKEY_VAULT_ID is not set.",
    message: "No project vault was found.",
    hint: "Run the command inside your project, store a first secret there to create its latchkey.json, or set LATCHKEY_VAULT_ID.",
    exitCode: ExitCode.failure,
  },
  LK_REGISTRY_INVALID: {
    summary: "A registry was named by something that is not an http(s) URL of an npm-compatible registry.",
    message: "The registry URL is not valid.",
    hint: "Give the registry's full URL, e.g. `--registry https://npm.example.com/`, or use --npm, --github or --gitlab.",
    exitCode: ExitCode.usage,
  },
  LK_TOKEN_MISSING: {
    summary:
      "No token for the registry was found in any source: command input, environment, host CLI (gh/glab) or keystore.",
    message: "No token is available for this registry.",
    hint: "Run `latchkey login --registry URL`, or set the registry's token variable; `latchkey whoami --explain` shows every source checked.",
    exitCode: ExitCode.failure,
  },
  LK_TOKEN_INVALID: {
    summary: "The registry rejected the token (HTTP 401 or 403 from its whoami endpoint).",
    message: "The registry did not accept the token.",
    hint: "Log in again with `latchkey login --registry URL`; if the token came from the environment or gh/glab, renew it there.",
    exitCode: ExitCode.failure,
  },
  LK_TOKEN_UNVERIFIED: {
    summary:
      "`latchkey login` could not confirm a token: the registry's /-/whoami answered 404, 405 or 501 (a wrong path, or a registry without that endpoint), so the token was not stored.",
    message: "The registry could not confirm the token, so it was not stored.",
    hint: "Check the registry URL (a wrong path answers 404 too); if the registry really has no /-/whoami, store the token unchecked with `latchkey login --no-verify`.",
    exitCode: ExitCode.failure,
  },
  LK_LOGIN_FAILED: {
    summary:
      "Logging in to a registry did not produce a token (wrong credentials, cancelled or expired web login).",
    message: "Login failed.",
    hint: "Check the user name and password, or finish the web login in the browser before it expires, then try again.",
    exitCode: ExitCode.failure,
  },
  LK_REGISTRY_UNREACHABLE: {
    summary: "The registry could not be reached, or answered with something that is not its API.",
    message: "The registry could not be reached.",
    hint: "Check the URL, your network and any proxy settings (HTTPS_PROXY), then try again.",
    exitCode: ExitCode.failure,
  },
  LK_NPMRC_INVALID: {
    summary: "An .npmrc file could not be read or safely updated.",
    message: "An .npmrc file is not usable.",
    hint: "Fix or remove the line named in the message; Latchkey left the file untouched.",
    exitCode: ExitCode.failure,
  },
  LK_TOKEN_REROUTED: {
    summary:
      "A project's .npmrc or .yarnrc.yml refers to a variable `latchkey exec` sets to one registry's token, other than as that registry's own token, so the package manager would send the token to another host.",
    message: "A project file would send a registry's token to another host.",
    hint: "Remove that reference, or make the line name the registry's own variable (`latchkey setup npmrc --project` writes such lines); `latchkey exec` starts nothing until then.",
    exitCode: ExitCode.failure,
  },
  LK_PROJECT_CONFIG_UNCHECKED: {
    summary:
      "A project's .npmrc or .yarnrc.yml makes the package manager read configuration `latchkey exec` cannot check (npm's `userconfig`, `globalconfig` or `prefix`, yarn's `injectEnvironmentFiles`), or is YAML it cannot read the way yarn does, so the package manager could send a registry's token to another host.",
    message: "A project file makes the package manager read configuration `latchkey exec` cannot check.",
    hint: "Remove the setting the message names from the project's file (such settings belong in your own ~/.npmrc or ~/.yarnrc.yml), or correct the YAML; `latchkey exec` starts nothing until then.",
    exitCode: ExitCode.failure,
  },
  LK_HELPER_INPUT_INVALID: {
    summary:
      "A credential helper (git or docker protocol) received input it will not act on: a malformed line, a control character or a missing field.",
    message: "The credential helper's input is not valid.",
    hint: "The helper is meant to be called by git or docker; check the helper configuration (`latchkey setup git`).",
    exitCode: ExitCode.usage,
  },
  LK_PROVIDER_FAILED: {
    summary:
      "An external credential provider failed, timed out or printed something other than the protocol's JSON answer.",
    message: "The credential provider failed.",
    hint: "Run the provider command by hand with `--registry-uri URI` to see its error, or remove it from the configuration.",
    exitCode: ExitCode.failure,
  },
  LK_PROVIDER_NOT_APPROVED: {
    summary:
      "A credential provider declared by the project (not by you) has not been approved to run on this machine.",
    message: "The project's credential provider has not been approved.",
    hint: "Run the command once on a terminal to review and approve the provider; in CI set LATCHKEY_ALLOW_PROJECT_CREDENTIALS=1 (or `allow_project_credentials = true` under [ci] in config.toml) if you trust the repository.",
    exitCode: ExitCode.failure,
  },
  LK_TOKEN_ENV_NOT_APPROVED: {
    summary:
      "The project's latchkey.json names an environment variable (`tokenEnv`) as a registry's token, and you have not approved sending that variable to that registry.",
    message: "The project's tokenEnv has not been approved.",
    hint: "Run the command once on a terminal to review and approve it, or declare the registry in your own config.toml; in CI set LATCHKEY_ALLOW_PROJECT_CREDENTIALS=1 (or `allow_project_credentials = true` under [ci] in config.toml) if you trust the repository.",
    exitCode: ExitCode.failure,
  },
  LK_VAULT_NOT_APPROVED: {
    summary:
      "The project's latchkey.json names a vault this machine uses for another project directory, and you have not approved this project's use of it.",
    message: "The project's vault has not been approved for this project.",
    hint: "Run the command once on a terminal to review and approve it (a moved project or a second checkout asks once); in CI set LATCHKEY_ALLOW_PROJECT_CREDENTIALS=1 (or `allow_project_credentials = true` under [ci] in config.toml) if you trust the repository.",
    exitCode: ExitCode.failure,
  },
  LK_GIT_CONFIG_FAILED: {
    summary:
      "`latchkey setup git` could not update git's configuration: git is not installed, or `git config` refused (e.g. --local outside a repository).",
    message: "git's configuration could not be updated.",
    hint: "Check that `git --version` works; for --local, run the command inside the repository.",
    exitCode: ExitCode.failure,
  },
  LK_OAUTH_ENV_NOT_FOUND: {
    summary: "No service environment of that name is declared for the selected profile in config.toml.",
    message: "No such environment.",
    hint: "Declare [environments.NAME] (or [profiles.PROFILE.environments.NAME]) in $LATCHKEY_HOME/config.toml.",
    exitCode: ExitCode.failure,
  },
  LK_OAUTH_SECRET_MISSING: {
    summary:
      "A service environment's client secret (or legacy password) is not set: its variable is neither in the environment nor in the project's .env.NAME file.",
    message: "The environment's secret is not set.",
    hint: "Export the variable named in the message, or put it in the project's .env.NAME file; Latchkey never prompts for it.",
    exitCode: ExitCode.failure,
  },
  LK_OAUTH_FAILED: {
    summary:
      "A service environment's token could not be obtained: discovery failed, or the token endpoint refused the client or grant.",
    message: "The token request for the environment failed.",
    hint: "Check the environment's issuer, client_id and secret in config.toml; run with -v to see the provider's answer (secrets redacted).",
    exitCode: ExitCode.failure,
  },
  LK_OAUTH_INSUFFICIENT_SCOPE: {
    summary:
      "A resource server rejected the environment's token with insufficient_scope, or asked for a step-up authentication (acr_values / max_age); no retry was made.",
    message: "The resource server needs more than the environment's token grants.",
    hint: "Add the scope (or audience/resource) the server asks for to the environment's configuration, or ask the provider's administrator to grant it.",
    exitCode: ExitCode.failure,
  },
  LK_OAUTH_TOKEN_REJECTED: {
    summary:
      "A resource server rejected the environment's token twice: once cached and once freshly acquired after the first 401.",
    message: "The resource server rejected a freshly acquired token.",
    hint: "The client or token is not accepted by that server: check the environment's audience/resource and the server's configuration.",
    exitCode: ExitCode.failure,
  },
  LK_SESSION_EXPIRED: {
    summary:
      "The SSO session has expired (or was never started) and cannot be refreshed: its access token is past expiry and there is no usable refresh token.",
    message: "The SSO session has expired.",
    hint: "Run `latchkey login sso` (or `latchkey login sso --device` on a machine without a browser).",
    exitCode: ExitCode.failure,
  },
  LK_OAUTH_STATE_MISMATCH: {
    summary:
      "The browser came back to the login listener with a `state` that does not match the request: the callback was not the one this login started, so no code was exchanged.",
    message: "The login callback's state does not match this login.",
    hint: "Run `latchkey login sso` again and finish it in the browser window it opens; close other login tabs.",
    exitCode: ExitCode.failure,
  },
  LK_OAUTH_DENIED: {
    summary:
      "The identity provider ended the login with an error (the user declined, or the provider refused the request); no code was exchanged.",
    message: "The identity provider refused the login.",
    hint: "Check the provider's error in the message; run `latchkey login sso` again, or ask your identity provider's administrator.",
    exitCode: ExitCode.failure,
  },
  LK_OAUTH_TIMEOUT: {
    summary:
      "An interactive login (browser or device code) did not finish in time; the loopback listener was closed.",
    message: "The login did not finish in time.",
    hint: "Run `latchkey login sso` again and complete it in the browser (or `--device` and enter the code) within the time shown.",
    exitCode: ExitCode.failure,
  },
  LK_SSO_FAILED: {
    summary:
      "The SSO login, refresh or logout could not be completed with the identity provider (discovery, token or revocation request failed).",
    message: "The SSO request to the identity provider failed.",
    hint: "Check the issuer URL and client id (`latchkey auth status`, config.toml's sso_issuer / sso_client_id); run with -v for the provider's answer.",
    exitCode: ExitCode.failure,
  },
  LK_NO_BROWSER: {
    summary:
      "A browser login was asked for where no browser can be opened: no BROWSER, and on Linux no display (DISPLAY, WAYLAND_DISPLAY) or no xdg-open.",
    message: "No browser can be opened on this machine.",
    hint: "Log in with `--device` (you enter a short code on any device), or set BROWSER to a program that opens URLs.",
    exitCode: ExitCode.failure,
  },
  LK_NOT_LOGGED_IN: {
    summary: "The command needs a Latchkey server session and there is none for the active profile.",
    message: "You are not logged in to a Latchkey server.",
    hint: "Run `latchkey login --server URL` (add `--device` on a machine without a browser).",
    exitCode: ExitCode.failure,
  },
  LK_SERVER_UNREACHABLE: {
    summary: "The Latchkey server could not be reached (connection refused, DNS, TLS or timeout).",
    message: "The Latchkey server could not be reached.",
    hint: "Check that the server is running and that its URL is right: the one in the message, from `latchkey login --server URL` or the profile's `server` in config.toml.",
    exitCode: ExitCode.failure,
  },
  LK_SERVER_ERROR: {
    summary: "The Latchkey server answered with an error this command does not handle.",
    message: "The Latchkey server answered with an error.",
    hint: "Run the command again with -v for the server's answer; if it persists, check the server's log.",
    exitCode: ExitCode.failure,
  },
  LK_SIGNATURE_INVALID: {
    summary:
      "A successful server response had a missing, malformed or wrong X-Latchkey-Signature, or one made for another request; the body was discarded unread.",
    message: "The server's response failed its X-Latchkey-Signature check and was discarded.",
    hint: "Something between you and the server altered or replayed the response, or the server is not the one you logged in to. Retry; if it repeats, check proxies and the server URL.",
    exitCode: ExitCode.integrity,
  },
  LK_VAULT_CONFLICT: {
    summary:
      "A push was refused because the server has a newer version of the vault than the one this push was based on.",
    message: "The server has a newer version of this vault; the push was refused.",
    hint: "Run `latchkey env pull` to fetch it, reconcile your changes, then push again.",
    exitCode: ExitCode.failure,
  },
  LK_VAULT_ROLLBACK: {
    summary:
      "The server offered a vault version lower than the highest this machine has seen: an old copy replayed, refused.",
    message: "The server offered an older version of the vault than this machine has already seen.",
    hint: "Someone may be replaying an old copy. Keep your local vault; ask the server's administrator to check it.",
    exitCode: ExitCode.integrity,
  },
  LK_VAULT_STALE: {
    summary:
      "With --offline, the local copy of a synced vault was refused: its last successful push or pull is older than --max-age, or was never recorded.",
    message: "The local copy of this vault is older than --max-age allows.",
    hint: "Run `latchkey env pull` while the server is reachable, or accept an older copy with a larger --max-age (e.g. --max-age 7d).",
    exitCode: ExitCode.failure,
  },
  LK_VAULT_NOT_PAIRED: {
    summary:
      "The synced vault's key is wrapped for another machine's wrapping key: this machine is not paired for the vault.",
    message: "This machine is not paired for this vault: its key is wrapped for another machine.",
    hint: "Pair this machine with one that has the vault: run `latchkey pair` here, then `latchkey env pair CODE` on the other machine.",
    exitCode: ExitCode.failure,
  },
  LK_VAULT_NOT_SYNCED: {
    summary: "The server has no copy of this vault for your account.",
    message: "The server has no copy of this vault for your account.",
    hint: "Run `latchkey env push` on a machine that has the vault first.",
    exitCode: ExitCode.failure,
  },
  LK_STEP_UP_REQUIRED: {
    summary:
      "The server wants a fresh proof of your password (and TOTP code) for this action, and the request had none, or one that is expired, used, or for another action or session.",
    message: "This action needs a fresh proof of your password.",
    hint: "Run the command again on a terminal: it asks for your password (and TOTP code) and sends the proof.",
    exitCode: ExitCode.failure,
  },
  LK_STEP_UP_FAILED: {
    summary:
      "Re-authentication failed: the password or the TOTP code was wrong. The attempt counts against the sign-in limits.",
    message: "The password or the TOTP code is wrong.",
    hint: "Try again with your account's password and a current code from your authenticator app.",
    exitCode: ExitCode.failure,
  },
  LK_STEP_UP_UNAVAILABLE: {
    summary:
      "Your account cannot re-authenticate with the server, e.g. it has no password; actions that need a step-up proof are refused.",
    message: "Your account cannot re-authenticate with this server.",
    hint: "Ask the server's administrator to set a password for your account (`latchkey-server admin`).",
    exitCode: ExitCode.failure,
  },
  LK_RATE_LIMITED: {
    summary: "The server refused the attempt because there were too many recent ones; nothing was checked.",
    message: "Too many attempts; the server refused this one.",
    hint: "Wait a while and try again.",
    exitCode: ExitCode.failure,
  },
  LK_NOT_INTERACTIVE: {
    summary:
      "The command must ask something on a terminal (a password, a confirmation), and its standard input or error is not one.",
    message: "This command needs a terminal to ask on, and stdin is not one.",
    hint: "Run it in an interactive terminal.",
    exitCode: ExitCode.usage,
  },
  LK_PAIRING_NOT_FOUND: {
    summary:
      "No pairing of your account has that code, or it has expired, been used or revoked. Codes are looked up only within your own account.",
    message: "No pending pairing of your account has this code.",
    hint: "Check the code shown on the new machine (it lasts 5 minutes), and that both machines are signed in to the same account; run `latchkey pair` there again for a new one.",
    exitCode: ExitCode.failure,
  },
  LK_PAIRING_FAILED: {
    summary:
      "A pairing could not complete: its state moved on (another approver, a revocation, expiry), or a check of the other device's keys failed.",
    message: "The pairing could not complete.",
    hint: "Start again with `latchkey pair` on the new machine; if a check of the keys failed, someone may be relaying the connection: do not approve.",
    exitCode: ExitCode.failure,
  },
  LK_SHARING_KEY_MISMATCH: {
    summary:
      "Your account's sharing key on the server is not the one this machine holds (another machine set or rotated it, or this machine has none); organisation operations are refused rather than overwrite it silently.",
    message: "The server has another sharing key for your account than this machine.",
    hint: "If another machine of yours holds the key, pair this one with it (`latchkey pair` here, `latchkey env pair CODE` there), which brings the key over; to replace the key with one made here instead, run `latchkey env rotate-sharing-key` (organisations must then share their vaults with you again).",
    exitCode: ExitCode.failure,
  },
  LK_SHARING_KEY_EXISTS: {
    summary:
      "The server refused to set a sharing key for your account because it has one already; only a rotation replaces it.",
    message: "Your account already has a sharing key on the server; it was not replaced.",
    hint: "Run `latchkey env rotate-sharing-key` to replace it with this machine's.",
    exitCode: ExitCode.failure,
  },
  LK_FORBIDDEN: {
    summary: "The server refused the request: your account may not access this resource.",
    message: "The server refused access to this resource.",
    hint: "Check that you are logged in as the right account (`latchkey whoami`) and that the vault id in latchkey.json is yours.",
    exitCode: ExitCode.failure,
  },
  LK_DASHBOARD_READ_ONLY: {
    summary:
      "A request carried the browser dashboard's token for an action the dashboard may not take: its token reads, pairs the browser as a new device and signs out everywhere, nothing else. Nothing was changed.",
    message: "The dashboard's session may not take this action; nothing was changed.",
    hint: "Use the latchkey command line for it (`latchkey help`), signed in on a machine of yours.",
    exitCode: ExitCode.failure,
  },
  LK_ORG_NOT_FOUND: {
    summary:
      "No organisation with this slug has your account as a member. Organisations you do not belong to look the same as absent ones.",
    message: "No organisation with this slug has you as a member.",
    hint: "Check the slug with `latchkey org list`; an admin of the organisation can add you with `latchkey org add`.",
    exitCode: ExitCode.failure,
  },
  LK_ORG_FORBIDDEN: {
    summary:
      "Your role in the organisation does not allow this action; the message names the role it needs (owner, admin, maintainer, member, strongest first).",
    message: "Your role in this organisation does not allow this action.",
    hint: "Ask an owner or admin of the organisation (`latchkey org members SLUG`) to do it, or to give you the role it needs.",
    exitCode: ExitCode.failure,
  },
  LK_ORG_EXISTS: {
    summary: "An organisation with this slug already exists on the server (slugs are unique server-wide).",
    message: "An organisation with this slug already exists.",
    hint: "Choose another slug.",
    exitCode: ExitCode.failure,
  },
  LK_ORG_LAST_OWNER: {
    summary:
      "The change would leave the organisation without an owner: the last owner cannot be demoted or removed.",
    message: "This change would leave the organisation without an owner.",
    hint: "Make another member an owner first (`latchkey org set-role SLUG EMAIL owner`), or delete the organisation with `latchkey org delete SLUG`.",
    exitCode: ExitCode.failure,
  },
  LK_MEMBER_NOT_FOUND: {
    summary: "The account named is not a member of the organisation.",
    message: "This account is not a member of the organisation.",
    hint: "List the members with `latchkey org members SLUG`.",
    exitCode: ExitCode.failure,
  },
  LK_MEMBER_EXISTS: {
    summary: "The account is already a member of the organisation.",
    message: "This account is already a member of the organisation.",
    hint: "Change its role with `latchkey org set-role SLUG EMAIL ROLE` instead.",
    exitCode: ExitCode.failure,
  },
  LK_ORG_MEMBERS_CHANGED: {
    summary:
      "A share named a wrapped key for an account that is not a member of the organisation, or for a sharing key the member no longer has: the members changed since the keys were wrapped. Nothing was written.",
    message: "The organisation's members or their sharing keys changed while this share was prepared.",
    hint: "Run `latchkey env share --org SLUG` again: it wraps the vault key for the members as they are now.",
    exitCode: ExitCode.failure,
  },
  LK_ORG_MEMBER_KEY_CHANGED: {
    summary:
      "The server lists another sharing key for an organisation member than the one this machine pinned when it first shared with them (org-keys.json): the member rotated their key, or the server is offering a key of its own. Nothing was shared.",
    message: "A member's sharing key is not the one this machine pinned for them; nothing was shared.",
    hint: "Ask the member, by a channel other than the server, for the fingerprint their `latchkey org members SLUG` shows as this machine's sharing key; if it is the new one, run `latchkey org trust SLUG EMAIL FINGERPRINT`, then share again.",
    exitCode: ExitCode.failure,
  },
  LK_ORG_MEMBER_UNTRUSTED: {
    summary:
      "A share would wrap a vault key for a member whose sharing key this machine has never seen, and nobody confirmed it: no terminal to ask on, or the answer was no. Nothing was shared.",
    message: "A member's sharing key has not been confirmed on this machine; nothing was shared.",
    hint: "Run the command on a terminal to review the new members' fingerprints, or pin each with `latchkey org trust SLUG EMAIL FINGERPRINT`; `--trust-new-members` accepts whatever keys the server sends for new members.",
    exitCode: ExitCode.failure,
  },
  LK_ORG_SHARER_NOT_MAINTAINER: {
    summary:
      "An organisation copy's vault key was wrapped by an account the server does not list as a current maintainer, admin or owner of the organisation (removed, or a plain member): it is not opened, whatever this machine pinned. Nothing was written.",
    message:
      "The organisation vault's key was wrapped by someone who is not a maintainer of the organisation now; nothing was written.",
    hint: "Ask a maintainer of the organisation to run `latchkey env share --org SLUG --new-key` in the vault's project, which seals it with a new key wrapped by them (`org rotate-keys` cannot: it opens the current key first), then pull again.",
    exitCode: ExitCode.failure,
  },
  LK_ORG_VAULT_NOT_SHARED: {
    summary: "The organisation has no copy of this vault: nobody has shared it to the organisation yet.",
    message: "This vault is not shared with the organisation.",
    hint: "A maintainer of the organisation shares it with `latchkey env share --org SLUG`.",
    exitCode: ExitCode.failure,
  },
  LK_ORG_VAULT_KEY_MISSING: {
    summary:
      "The organisation's copy of the vault holds no key wrapped for your sharing key: it was shared before you joined or registered your sharing key, or you rotated that key since.",
    message: "The organisation's copy of this vault has no key for your sharing key yet.",
    hint: "Ask a maintainer of the organisation to run `latchkey env share --org SLUG` again.",
    exitCode: ExitCode.failure,
  },
  LK_ORG_VAULT_NOT_SYNCED: {
    summary:
      "This machine has not pulled the organisation's copy of the vault (or no longer has its record of it), so it holds no organisation vault key to seal a push or a share with.",
    message: "This machine has not synced the organisation's copy of this vault.",
    hint: "Run `latchkey env pull --org SLUG` first, then push or share again.",
    exitCode: ExitCode.failure,
  },
  LK_VAULT_KEY_STALE: {
    summary:
      "The organisation vault key this machine kept for a copy at its last pull or share is not the copy's key now (the key was rotated since, or the record is damaged): the copy's current version does not open with it, or the server refused a platform connection sealed with it (HTTP 409, the connection's key version is not the copy's). Nothing was sent or stored: a credential sealed with an old key would open for whoever still holds it, and a rotation that re-seals with it would drop every connection.",
    message: "The vault key this machine holds for the copy is not its current key.",
    hint: "Run `latchkey env pull --org SLUG` to get the copy's current key, then run the command again.",
    exitCode: ExitCode.failure,
  },
  LK_ORG_ROTATION_INCOMPLETE: {
    summary:
      "Some organisation vaults did not get a new vault key (this machine holds no key of theirs, your role does not allow it, or pushes kept landing first); the rest of the command was done and its report printed.",
    message: "Some organisation vaults kept their old vault key.",
    hint: "A maintainer who can pull those vaults runs `latchkey org rotate-keys SLUG`.",
    exitCode: ExitCode.failure,
  },
  LK_ACCOUNT_EXISTS: {
    summary: "`latchkey-server admin create-user` was given an email that already has an account.",
    message: "An account with this email already exists.",
    hint: "Use another email, or `latchkey-server admin enroll-totp EMAIL` to change the existing account.",
    exitCode: ExitCode.failure,
  },
  LK_ACCOUNT_NOT_FOUND: {
    summary: "A `latchkey-server admin` command named an email that has no account.",
    message: "There is no account with this email.",
    hint: "Create it first with `latchkey-server admin create-user EMAIL`.",
    exitCode: ExitCode.failure,
  },
  LK_EMAIL_INVALID: {
    summary: "An account email is not of the form name@domain.",
    message: "That is not a valid email address.",
    hint: "Give an address like alice@example.com.",
    exitCode: ExitCode.usage,
  },
  LK_PASSWORD_INVALID: {
    summary:
      "A new account password is shorter than 12 characters, or longer than the server accepts (1024 characters).",
    message: "The password must be 12 to 1024 characters long.",
    hint: "Choose a longer one (a passphrase of four or more words is easy to type and hard to guess); type it at the prompt, or pipe it on stdin (one line).",
    exitCode: ExitCode.usage,
  },
  LK_NODE_UNSUPPORTED: {
    summary:
      "The Node.js running Latchkey is older than it supports (the CLI needs 22.12, latchkey-server 22.13).",
    message: "This Node.js is older than Latchkey supports.",
    hint: "Install Node 22.13 or newer (Node 24 LTS recommended) and put it first on PATH.",
    exitCode: ExitCode.failure,
  },
  LK_HELPER_STALE: {
    summary:
      "git or pnpm is set up (by `latchkey setup`) to run a latchkey command that no longer exists: Latchkey was moved or uninstalled.",
    message: "A credential helper set up by Latchkey runs a program that no longer exists.",
    hint: "Run `latchkey setup git` or `latchkey setup pnpm` again from the latchkey you use now.",
    exitCode: ExitCode.failure,
  },
  LK_SERVER_LISTEN_FAILED: {
    summary:
      "latchkey-server could not listen: the port is taken, the address is not this machine's, or the port needs privileges.",
    message: "latchkey-server could not listen on its address.",
    hint: "Pick another port with `latchkey-server --port PORT` (0 picks a free one), or another address with --host.",
    exitCode: ExitCode.failure,
  },
  LK_BACKUP_EXISTS: {
    summary:
      "`latchkey-server admin backup` was given a file (or its manifest or secrets file beside it) that already exists; nothing was written.",
    message: "The backup file already exists; nothing was written.",
    hint: "Name a new file, or pass --force to replace it.",
    exitCode: ExitCode.failure,
  },
  LK_BACKUP_INVALID: {
    summary:
      "`latchkey-server admin restore` was given something that is not a usable Latchkey backup: its manifest (FILE.manifest.json) is missing or malformed, it was made for the other kind of database, or the SQLite file fails `PRAGMA integrity_check`. Nothing was restored.",
    message: "This is not a usable Latchkey backup; nothing was restored.",
    hint: "Restore the backup file `latchkey-server admin backup` wrote, with its FILE.manifest.json beside it, into a server using the same kind of database (DATABASE_URL set for PostgreSQL, unset for SQLite).",
    exitCode: ExitCode.integrity,
  },
  LK_BACKUP_TOO_NEW: {
    summary:
      "The backup was made by a newer latchkey-server: its database has migrations this server does not know, and this server cannot run on it. Nothing was restored.",
    message: "This backup comes from a newer latchkey-server; nothing was restored.",
    hint: "Restore it with the latchkey-server release that made it (its version is in FILE.manifest.json), or a later one.",
    exitCode: ExitCode.failure,
  },
  LK_RESTORE_NOT_EMPTY: {
    summary:
      "`latchkey-server admin restore` found a database (or a server secret or escrow key different from the backup's) already in the target, and was not given --force. Nothing was changed.",
    message: "The target database is not empty; nothing was restored.",
    hint: "Restore into a new data directory (--data-dir) or an empty PostgreSQL database, or pass --force to replace what is there.",
    exitCode: ExitCode.failure,
  },
  LK_RESTORE_IN_USE: {
    summary:
      "`latchkey-server admin restore` found the target SQLite database open in another process (a running server). Nothing was changed.",
    message: "The target database is in use by another process; nothing was restored.",
    hint: "Stop every latchkey-server process using this data directory, then run the restore again.",
    exitCode: ExitCode.failure,
  },
  LK_BACKUP_TOOL_FAILED: {
    summary:
      "A PostgreSQL backup or restore needs `pg_dump` or `pg_restore` (PostgreSQL's client tools) on PATH, and it was missing or failed. The message gives its exit code and last line of output; it never repeats the database password.",
    message: "pg_dump or pg_restore failed.",
    hint: "Install PostgreSQL's client tools (e.g. the postgresql-client package) in a version no older than the server's, or run the pg_dump or pg_restore command docs/operations.md gives by hand.",
    exitCode: ExitCode.failure,
  },
  LK_CI_TOKEN_INVALID: {
    summary:
      "A CI job's OIDC token was refused (HTTP 401): its issuer is not one the server trusts, or its algorithm, signing key, signature, issuer, audience, times (exp, nbf, iat with 60 s leeway; issued at most 15 minutes ago), jti or size failed a check. The message names the check; it never quotes the token.",
    message: "The CI job's OIDC token was refused.",
    hint: "Request a fresh ID token in the job, with the audience the vault's CI policy names (`latchkey env ci show`), from an issuer the server trusts (CI_OIDC_ISSUERS, docs/ci.md).",
    exitCode: ExitCode.failure,
  },
  LK_CI_TOKEN_REPLAYED: {
    summary:
      "A CI job's OIDC token was presented a second time (HTTP 401): each token (its issuer and jti) is accepted once.",
    message: "This CI job's OIDC token was already used.",
    hint: "Request a new ID token in the job for each exchange; never reuse or share one between jobs.",
    exitCode: ExitCode.failure,
  },
  LK_CI_ISSUER_FAILED: {
    summary:
      "The server could not get usable signing keys from a CI token's issuer (HTTP 502): its discovery document or key set did not arrive in time, was too large or malformed, or named another issuer or a key set on another host. The token was not accepted.",
    message: "The server could not get the signing keys of the CI token's issuer.",
    hint: "Try again in a minute; if it persists, the server's operator checks that the server can reach the issuer over HTTPS and that CI_OIDC_ISSUERS names it exactly as its tokens' `iss`.",
    exitCode: ExitCode.failure,
  },
  LK_CI_NOT_ENABLED: {
    summary:
      "The vault copy has no CI policy (HTTP 404): CI pulls were never enabled for it, or were disabled since. No CI job can pull it.",
    message: "CI pulls are not enabled for this vault.",
    hint: "Enable them with `latchkey env ci enable --provider github --repo OWNER/REPO` (add --org SLUG for an organisation's copy; docs/ci.md).",
    exitCode: ExitCode.failure,
  },
  LK_CI_POLICY_DENIED: {
    summary:
      "A CI job's token is valid, but the vault's CI policy does not admit the job (HTTP 403). The message names the rule that failed (repository, its ids, branch, environment, fork event, protected ref) and the claim's value; it never quotes the token.",
    message: "The vault's CI policy does not admit this job.",
    hint: "Compare the job with the policy (`latchkey env ci show`): its repository, branch and environment. A maintainer changes the policy with `latchkey env ci enable`.",
    exitCode: ExitCode.failure,
  },
  LK_CI_ESCROW_STALE: {
    summary:
      "A push or share to a copy with CI pulls enabled was sealed with a vault key the copy's escrow does not hold, and carried no escrow of the new key for the server's current escrow key (HTTP 409). Nothing was written. The CLI sends such a write once more with the new key's escrow by itself; this error means that was refused too.",
    message: "The vault's CI escrow does not open this new version; nothing was written.",
    hint: "Run the command again; if it is refused again, `latchkey env ci disable` then `latchkey env ci enable` make the escrow afresh.",
    exitCode: ExitCode.failure,
  },
  LK_CI_ESCROW_UNCONFIRMED: {
    summary:
      "The server asked a push or share to escrow a copy's key for CI pulls (409 LK_CI_ESCROW_STALE), and this machine has no record that its user agreed to escrow that copy for that escrow key: CI was never enabled from here, another maintainer enabled it, or the server's escrow key changed. Nothing was sent; without a terminal to ask on, the key is not handed over.",
    message: "This machine has not agreed to escrow this copy's key for the server; nothing was written.",
    hint: "Check the copy's policy with `latchkey env ci show` and, if the server should be able to decrypt the copy, run `latchkey env ci show --accept`; then run the command again.",
    exitCode: ExitCode.failure,
  },
  LK_CI_ESCROW_INVALID: {
    summary:
      "`latchkey env ci enable` sent an escrowed key that does not open the copy's current version on the server (HTTP 400): the copy was sealed with another key since this machine last synced it. Nothing was changed.",
    message: "The escrowed key does not open the vault's current version; CI pulls were not enabled.",
    hint: "Run `latchkey env pull` (with --org SLUG for an organisation's copy), then `latchkey env ci enable` again.",
    exitCode: ExitCode.failure,
  },
  LK_CI_ACCESS_TOKEN_INVALID: {
    summary:
      "The CI pull refused its bearer token (HTTP 401): it is not a CI access token this server issued (a session's token is never one), or it expired (they last at most 10 minutes and no longer than the job's OIDC token), or the vault's CI policy was disabled or replaced since it was issued.",
    message: "The CI access token was refused.",
    hint: "Run the CI pull again: `latchkey env pull --oidc` exchanges a fresh OIDC token of the job for a new CI access token.",
    exitCode: ExitCode.failure,
  },
  LK_CI_NO_ID_TOKEN: {
    summary:
      "`--oidc` found no OIDC ID token for this CI job: on GitHub Actions the runner sets ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN only for a job with `permissions: id-token: write`; on GitLab CI the job names one in an `id_tokens:` block (LATCHKEY_OIDC_TOKEN, or the variable given with --token-env); or the runner's token endpoint refused or failed. Nothing was sent to the Latchkey server.",
    message: "This job has no OIDC ID token to prove who it is.",
    hint: "GitHub Actions: add `permissions: id-token: write` to the job. GitLab CI: add `id_tokens: { LATCHKEY_OIDC_TOKEN: { aud: <the server's URL> } }` to the job. `latchkey setup ci --oidc --provider github|gitlab` prints both.",
    exitCode: ExitCode.failure,
  },
  LK_PLATFORM_UNAUTHORIZED: {
    summary:
      "A platform a vault is pushed to refused the connection's credential (HTTP 401 or 403, or the platform's own answer for a refused token: Coolify's 400 \"Invalid token.\", Railway's \"Not Authorized\" in an HTTP 200 GraphQL answer, AWS's UnrecognizedClientException, InvalidSignatureException or AccessDeniedException): the token was revoked or expired, or lacks the scope the push or pull needs (a Coolify pull needs read:sensitive). Nothing further was sent.",
    message: "The platform refused the connection's credential.",
    hint: "Create a token with the scopes docs/platforms.md lists for this platform, then connect again with `latchkey env platforms connect`.",
    exitCode: ExitCode.failure,
  },
  LK_PLATFORM_UNREACHABLE: {
    summary: "A platform's API could not be reached (refused, reset, unknown host, timed out).",
    message: "The platform's API could not be reached.",
    hint: "Check the network and the connection's base URL, then push again; a push only writes names it reports as written.",
    exitCode: ExitCode.failure,
  },
  LK_PLATFORM_RATE_LIMITED: {
    summary:
      "A platform kept answering 429 (too many requests) or a server error after Latchkey waited and retried as it asked.",
    message: "The platform is limiting or failing requests; Latchkey stopped retrying.",
    hint: "Wait a few minutes and push again; names already written stay written.",
    exitCode: ExitCode.failure,
  },
  LK_PLATFORM_FAILED: {
    summary:
      "A platform answered a request in a way Latchkey does not accept (an unexpected status, or a body that is not the documented shape). Values are never quoted in the message.",
    message: "The platform's API answered unexpectedly.",
    hint: "Check the connection's configuration (project, app, repository) with `latchkey env platforms list`; run with -v to see the request and status lines.",
    exitCode: ExitCode.failure,
  },
  LK_PLATFORM_PULL_UNSUPPORTED: {
    summary:
      "The platform stores secrets write-only (Fly.io, GitHub Actions, Vercel's sensitive variables, a generic receiver), so there is nothing to pull from it.",
    message: "This platform does not return secret values, so they cannot be pulled.",
    hint: "Pull from the vault instead (`latchkey env pull`); the platform only ever receives copies.",
    exitCode: ExitCode.failure,
  },
  LK_PLATFORM_NOT_CONNECTED: {
    summary:
      "The vault copy has no platform connection of that name on the server (never made, or disconnected).",
    message: "No platform connection of this name for this vault copy.",
    hint: "List the copy's connections with `latchkey env platforms list` (add --org SLUG for an organisation's copy).",
    exitCode: ExitCode.failure,
  },
  LK_PLATFORM_NAME_TAKEN: {
    summary: "The vault copy already has a platform connection of that name; names are unique per copy.",
    message: "This vault copy already has a platform connection of this name.",
    hint: "Choose another name with --name, or `latchkey env platforms disconnect NAME` first to replace it.",
    exitCode: ExitCode.failure,
  },
  LK_PLATFORM_CREDENTIAL_UNREADABLE: {
    summary:
      "A connection's sealed platform credential does not open with the key this machine holds for the vault copy: the copy's key was rotated since the connection was made, or the server handed back a credential that is not this connection's.",
    message: "The connection's sealed credential does not open with this vault copy's key.",
    hint: "Pull the copy (`latchkey env pull`) and try again; if it still fails, disconnect and connect again with a fresh platform token (`latchkey env platforms disconnect NAME`, then `connect`).",
    exitCode: ExitCode.failure,
  },
  LK_PLATFORM_CONNECTIONS_CHANGED: {
    summary:
      "A rotation of an organisation copy's vault key re-seals every platform connection's credential with the new key in its share, and the connections it re-sealed are not exactly the copy's connections now: one was made or disconnected in between (HTTP 409). Nothing was written. `org remove`, `org rotate-keys` and `env share --new-key` list the connections again and send the share again by themselves; this error means that kept happening.",
    message: "The copy's platform connections changed while its key was being rotated; nothing was written.",
    hint: "Run the rotation again (`latchkey org rotate-keys SLUG`, or `latchkey env share --org SLUG --new-key`) once nobody is connecting or disconnecting platforms of the vault.",
    exitCode: ExitCode.failure,
  },
} as const satisfies Record<string, ErrorSpec>;

/** A stable error code from the catalogue. */
export type ErrorCode = keyof typeof errorCatalogue;

/** Options for a single error instance. */
export interface LatchkeyErrorOptions {
  /** Replaces the catalogue message; say what happened, with the names involved (never secret values). */
  message?: string;
  /** Replaces the catalogue hint. */
  hint?: string;
  /** The underlying error, shown only with -v. */
  cause?: unknown;
  /** Structured, non-secret detail for --json output. */
  details?: Record<string, unknown>;
}

/** The only error type Latchkey surfaces to users: code, message, hint and exit code. */
export class LatchkeyError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  readonly exitCode: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, options: LatchkeyErrorOptions = {}) {
    const spec: ErrorSpec = errorCatalogue[code];
    super(
      options.message ?? spec.message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "LatchkeyError";
    this.code = code;
    this.hint = options.hint ?? spec.hint;
    this.exitCode = spec.exitCode;
    this.details = options.details;
  }

  /** The JSON shape printed under `--json`. */
  toJSON(): { code: ErrorCode; message: string; hint: string; details?: Record<string, unknown> } {
    return {
      code: this.code,
      message: this.message,
      hint: this.hint,
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

/** True when `value` is a LatchkeyError, optionally with the given code. */
export function isLatchkeyError(value: unknown, code?: ErrorCode): value is LatchkeyError {
  return value instanceof LatchkeyError && (code === undefined || value.code === code);
}
