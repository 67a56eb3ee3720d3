import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { readSecretInput } from "../input.js";
import { printData, printJson, printStatus, printValue } from "../output/output.js";

/** `keystore get`: prints the stored value alone on stdout, for scripts and helper protocols. */
export async function keystoreGet(ctx: Context, account: string): Promise<number> {
  const { keystore } = await ctx.keystore(account);
  const value = await keystore.get(account);
  if (value === null) {
    throw new LatchkeyError("LK_SECRET_NOT_FOUND", { message: `No keystore entry named ${account}.` });
  }
  printValue(ctx, value);
  return 0;
}

/** `keystore set`: the value comes from stdin or a masked prompt, never argv. */
export async function keystoreSet(ctx: Context, account: string): Promise<number> {
  const value = await readSecretInput(ctx, `Value for ${account}`);
  const resolution = await ctx.keystore();
  await resolution.keystore.set(account, value);
  printStatus(
    ctx,
    `Stored ${account} in the ${resolution.backend === "keyring" ? "OS keychain" : "encrypted file store"}.`,
  );
  return 0;
}

/** `keystore delete`. */
export async function keystoreDelete(ctx: Context, account: string): Promise<number> {
  const { keystore } = await ctx.keystore();
  if (!(await keystore.delete(account))) {
    throw new LatchkeyError("LK_SECRET_NOT_FOUND", { message: `No keystore entry named ${account}.` });
  }
  printStatus(ctx, `Deleted ${account}.`);
  return 0;
}

/** `keystore list`: account names only, never values. */
export async function keystoreList(ctx: Context, json: boolean): Promise<number> {
  const resolution = await ctx.keystore();
  const accounts = await resolution.keystore.list();
  if (json) printJson(ctx, { backend: resolution.backend, accounts });
  else if (accounts.length > 0) printData(ctx, accounts.join("\n"));
  else printStatus(ctx, "The keystore is empty.");
  return 0;
}
