import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { defineConfig } from "vitest/config";

const here = path.dirname(fileURLToPath(import.meta.url));

// Auth.js's adapter suite is vendored next to the checkout, not on npm: it is
// imported from there at run time, never copied. AUTHJS_ADAPTER_SUITE names the
// file; otherwise ../shared/vendor beside the repository, then /work/shared/vendor.
function adapterSuite(): string {
  const given = process.env.AUTHJS_ADAPTER_SUITE;
  if (given) {
    if (!existsSync(given)) throw new Error(`AUTHJS_ADAPTER_SUITE=${given}: no such file`);
    return path.resolve(given);
  }
  const candidates = [
    path.resolve(here, "../../../shared/vendor/authjs-adapter-suite/adapter.ts"),
    "/work/shared/vendor/authjs-adapter-suite/adapter.ts",
  ];
  const found = candidates.find((file) => existsSync(file));
  if (!found) {
    throw new Error(`Auth.js adapter suite not found (tried ${candidates.join(", ")}): set AUTHJS_ADAPTER_SUITE`);
  }
  return found;
}

export default defineConfig({
  resolve: {
    alias: { "authjs-adapter-suite": adapterSuite() },
    // The vendored file lies outside this project: resolve its imports
    // (vitest) from here, the one copy the runner itself uses.
    dedupe: ["vitest", "@auth/core"],
  },
  test: {
    include: ["*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    watch: false,
  },
});
