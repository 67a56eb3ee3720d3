// The one piece of @noble/ciphers the CLI uses, in a module of its own so that pure.ts can load it at the first
// decryption instead of at start-up: noble's AES module builds its lookup tables when it is evaluated, which
// every command would otherwise pay, including the ones that decrypt nothing (a token from the OS keychain).
// Through this re-export the bundler keeps only GCM's part of the module: a dynamic import of the package
// itself keeps every mode it exports, and their decryption tables are then built too.
export { gcm } from "@noble/ciphers/aes.js";
