// A host CLI as a token source, for real: GitHub's `gh` (apt package gh) logged in through its own config file in
// the test's HOME. `latchkey token --github` answers with gh's token, after the environment and before a stored
// token, and never copies it into Latchkey's storage.
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { expectFailure, expectSuccess, type TempProject } from "./support/project.js";
import { expectNoSecretOnDisk, registryProject } from "./support/registry-flows.js";

function ghVersion(): string | null {
  try {
    return execFileSync("gh", ["--version"], { encoding: "utf8" }).split("\n")[0]!;
  } catch {
    return null;
  }
}

const version = ghVersion();
const mustRun = process.env.CI === "true";
if (version === null && !mustRun)
  console.warn("skipping the gh host-CLI e2e suite: gh is not installed (apt package gh)");

describe("host CLI prerequisites", () => {
  it.runIf(mustRun)("gh is installed in CI (a skipped suite is a failure there)", () => {
    expect(version ?? "gh is not installed").toMatch(/^gh version /);
  });
});

describe.skipIf(version === null)("gh as the token source for GitHub Packages", () => {
  const projects: TempProject[] = [];
  afterEach(async () => {
    await Promise.all(projects.splice(0).map((p) => p.cleanup()));
  });

  it("reads `gh auth token` at command time, after the environment and before the stored token, and never stores it", async () => {
    const ghToken = `gho_${randomUUID().replaceAll("-", "")}`;
    const envToken = `ghp_env_${randomUUID().replaceAll("-", "")}`;
    const storedToken = `ghp_stored_${randomUUID().replaceAll("-", "")}`;
    const p = await registryProject();
    projects.push(p);

    // No gh login yet: no source has a token.
    expectFailure(await p.cli(["token", "--github"]), "LK_TOKEN_MISSING");

    // gh's own login, as `gh auth login --with-token` leaves it on a machine without a keyring.
    const hostsFile = join(p.home, ".config", "gh", "hosts.yml");
    await mkdir(join(p.home, ".config", "gh"), { recursive: true });
    await writeFile(
      hostsFile,
      `github.com:\n    oauth_token: ${ghToken}\n    user: octocat\n    git_protocol: https\n`,
      {
        mode: 0o600,
      },
    );
    const fromGh = await p.cli(["token", "--github"]);
    expectSuccess(fromGh);
    expect(fromGh.stdout).toBe(ghToken);

    // The environment comes first.
    const fromEnv = await p.cli(["token", "--registry", "https://npm.pkg.github.com/octo-org"], {
      env: { GH_TOKEN: envToken },
    });
    expect(fromEnv.stdout).toBe(envToken);

    // A stored token comes after gh, and gh's token is not copied over it.
    expectSuccess(await p.cli(["keystore", "set", "registry://npm.pkg.github.com/"], { input: storedToken }));
    expect((await p.cli(["token", "--github"])).stdout).toBe(ghToken);
    expect((await p.cli(["keystore", "get", "registry://npm.pkg.github.com/"])).stdout).toBe(storedToken);
    expect(JSON.parse((await p.cli(["keystore", "list", "--json"])).stdout)).toMatchObject({
      accounts: ["registry://npm.pkg.github.com/"],
    });
    // gh's token lives only in gh's own file.
    const files = await expectNoSecretOnDisk(p.root, [envToken, storedToken]);
    for (const file of files.filter((f) => f !== hostsFile)) {
      expect((await readFile(file)).includes(Buffer.from(ghToken)), file).toBe(false);
    }

    // gh logged out: the stored token is used.
    await rm(hostsFile);
    expect((await p.cli(["token", "--github"])).stdout).toBe(storedToken);
  });
});
