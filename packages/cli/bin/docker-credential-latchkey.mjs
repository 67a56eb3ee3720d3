#!/usr/bin/env node
// The installed `docker-credential-latchkey` command: docker's credential helper (`"credsStore": "latchkey"`).
// Committed, like latchkey.mjs, so that npm can link it on a fresh install before `prepare` has built dist/.
import "../dist/docker-credential.mjs";
