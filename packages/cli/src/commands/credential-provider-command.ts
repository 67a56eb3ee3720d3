import { Command, Option } from "commander";
import type { Context } from "../context.js";
import {
  CREDENTIAL_PROVIDER_EXIT,
  PROVIDER_ANSWER_FORMATS,
  credentialProvider,
  type ProviderAnswerFormat,
} from "./credential-provider.js";
import { globalOptions, type RunState } from "./support.js";

/** Builds `credential-provider`. */
export function credentialProviderCommand(ctx: Context, state: RunState): Command {
  const E = CREDENTIAL_PROVIDER_EXIT;
  return new Command("credential-provider")
    .description("print a registry's token as the npm credential-provider protocol's JSON answer")
    .requiredOption("--registry-uri <uri>", "the registry, e.g. https://npm.pkg.github.com/")
    .addOption(
      new Option("--format <shape>", "the answer's shape: Latchkey's own, or the npm RFC draft's")
        .choices(PROVIDER_ANSWER_FORMATS)
        .default("latchkey"),
    )
    .addHelpText(
      "after",
      "\nPrints exactly one line on stdout, and nothing else:\n" +
        '  {"token":"…","expiresAt":"2030-01-01T00:00:00Z"}   or   {"token":"…","expiresAt":null}\n' +
        "expiresAt is null unless the token came from a provider that said when it expires. With --format npm-rfc,\n" +
        "the npm RFC draft's shape (npm/rfcs#850): expiresAt in unix seconds, left out when unknown:\n" +
        '  {"_authToken":"…","expiresAt":1893456000}   or   {"_authToken":"…"}\n' +
        "Diagnostics go to stderr. The token is found like every Latchkey command finds it: the environment\n" +
        "(NPM_TOKEN, GH_TOKEN, …), a provider declared for the registry, gh/glab, then the keystore.\n" +
        "\nExit codes:\n" +
        `  ${E.credential}  the answer is on stdout\n` +
        `  ${E.noCredential}  no credential for that registry (LK_TOKEN_MISSING); stdout is empty\n` +
        `  ${E.usage}  usage: --registry-uri missing or not an http(s) URL\n` +
        `  ${E.error}  any other error (its LK_ code is on stderr); stdout is empty\n` +
        "\nExamples:\n" +
        "  latchkey credential-provider --registry-uri https://registry.npmjs.org/\n" +
        "  latchkey credential-provider --format npm-rfc --registry-uri https://npm.pkg.github.com/\n" +
        "  # Latchkey as the provider of a registry in another tool's (or another Latchkey's) config.toml;\n" +
        "  # the consumer appends --registry-uri itself:\n" +
        '  [registries."https://npm.example.com/"]\n' +
        '  provider = ["latchkey", "credential-provider"]\n' +
        "\nSee docs/credential-provider.md for the protocol.",
    )
    .action(async (opts: { registryUri: string; format: ProviderAnswerFormat }, command: Command) => {
      state.exitCode = await credentialProvider(
        ctx,
        opts.registryUri,
        globalOptions(command).verbose,
        opts.format,
      );
    });
}
