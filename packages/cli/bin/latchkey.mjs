#!/usr/bin/env node
// The installed `latchkey` command. It exists in git so that npm can link it on a fresh install, before
// `prepare` has built dist/; one static import costs well under a millisecond of start-up.
import "../dist/latchkey.mjs";
