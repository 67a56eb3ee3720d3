import { Command } from "commander";
import type { Context } from "../context.js";
import { keystoreDelete, keystoreGet, keystoreList, keystoreSet } from "./keystore.js";
import type { RunState } from "./support.js";

/** Builds the `keystore` plumbing commands. */
export function keystoreCommand(ctx: Context, state: RunState): Command {
  const keystore = new Command("keystore").description(
    "low-level access to Latchkey's entries in the active keystore (service `latchkey`)",
  );
  keystore.addHelpText(
    "after",
    "\nAccounts follow DESIGN.md's layout, e.g. registry://npm.example/, sso:<issuer>, vault-key:<id>.\n" +
      "Values are read from stdin or a masked prompt; a value on the command line would show in `ps`.",
  );
  keystore
    .command("get")
    .description("print the value stored under ACCOUNT (nothing else on stdout)")
    .argument("<account>", "account name")
    .action(async (account: string) => {
      state.exitCode = await keystoreGet(ctx, account);
    });
  keystore
    .command("set")
    .description("store a value under ACCOUNT, read from stdin or a masked prompt")
    .argument("<account>", "account name")
    .addHelpText("after", '\nExample:\n  printf %s "$TOKEN" | latchkey keystore set registry://npm.example/')
    .action(async (account: string) => {
      state.exitCode = await keystoreSet(ctx, account);
    });
  keystore
    .command("delete")
    .description("remove ACCOUNT")
    .argument("<account>", "account name")
    .action(async (account: string) => {
      state.exitCode = await keystoreDelete(ctx, account);
    });
  keystore
    .command("list")
    .description("list account names (never values)")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }) => {
      state.exitCode = await keystoreList(ctx, opts.json === true);
    });
  return keystore;
}
