#!/usr/bin/env node
// The installed `latchkey-server` command. It exists in git so that npm can link it on a fresh install, before
// `prepare` has built dist/.
import "../dist/main.mjs";
