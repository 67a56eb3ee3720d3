declare const __LATCHKEY_VERSION__: string | undefined;

/** The CLI's version, stamped in by the bundler; source runs (tests) report a dev version. */
export const VERSION: string = typeof __LATCHKEY_VERSION__ === "string" ? __LATCHKEY_VERSION__ : "0.0.0-dev";
