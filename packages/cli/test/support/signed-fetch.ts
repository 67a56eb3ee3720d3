// A sync server in a fetch, for in-process command tests: it answers every request 200 with what the test
// scripts, signed for that very request as the real server signs (server/signature.ts), so the answer passes
// callApi's signature check and reaches the code under test.
import { REQUEST_ID_HEADER, SIGNATURE_HEADER } from "@latchkey/core";
import { signResponse } from "../../src/server/signature.js";

/** A fetch that answers every request 200 with `answer(method, path)`, signed for that very request. */
export function signingFetch(answer: (method: string, path: string) => unknown): typeof fetch {
  return (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const path = `${url.pathname}${url.search}`;
    const token = (request.headers.get("authorization") ?? "").replace(/^Bearer /, "");
    const requestId = request.headers.get(REQUEST_ID_HEADER) ?? "";
    const bytes = Buffer.from(JSON.stringify(answer(request.method, path)));
    const signature = signResponse(token, { method: request.method, path, requestId, status: 200 }, bytes);
    return Promise.resolve(
      new Response(bytes, {
        status: 200,
        headers: { "content-type": "application/json", [SIGNATURE_HEADER]: signature },
      }),
    );
  };
}
