import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { jsonShapeProblem, MAX_JSON_DEPTH, MAX_JSON_ITEMS, registerJsonBodyParser } from "./json-body.js";

const scan = (text: string) => jsonShapeProblem(Buffer.from(text, "utf8"));
const nested = (levels: number, open = "[", close = "]") => open.repeat(levels) + close.repeat(levels);

describe("jsonShapeProblem", () => {
  it("takes nesting up to the limit and refuses one level more, in arrays and objects alike", () => {
    expect(scan(nested(MAX_JSON_DEPTH))).toBeNull();
    expect(scan(nested(MAX_JSON_DEPTH + 1))).toBe("depth");
    const objects = (levels: number) => '{"a":'.repeat(levels - 1) + "{}" + "}".repeat(levels - 1);
    expect(scan(objects(MAX_JSON_DEPTH))).toBeNull();
    expect(scan(objects(MAX_JSON_DEPTH + 1))).toBe("depth");
    // Depth is nesting, not the number of containers: siblings do not add up.
    expect(scan(`[${Array.from({ length: 100 }, () => nested(MAX_JSON_DEPTH - 1)).join(",")}]`)).toBeNull();
  });

  it("ignores brackets, braces and commas inside strings, escaped quotes included", () => {
    const inString = JSON.stringify({ s: nested(MAX_JSON_DEPTH * 2) + ",".repeat(MAX_JSON_ITEMS * 2) });
    expect(scan(inString)).toBeNull();
    // `\"` does not end a string, `\\"` does: what follows the latter is structure again.
    expect(scan(`{"s":"\\"${nested(MAX_JSON_DEPTH * 2)}"}`)).toBeNull();
    expect(scan(`{"s":"\\\\","t":${nested(MAX_JSON_DEPTH + 1)}}`)).toBe("depth");
    expect(scan(`{"s":"a\\\\\\"${nested(MAX_JSON_DEPTH * 2)}"}`)).toBeNull();
    // Multi-byte characters around structure change nothing.
    expect(scan(`{"é€😀":${nested(MAX_JSON_DEPTH + 1)}}`)).toBe("depth");
  });

  it("refuses more arrays, objects, elements and members than the limit, however shallow", () => {
    const elements = (n: number) => `[${Array.from({ length: n }, () => "0").join(",")}]`;
    // The array itself counts, and n elements follow n-1 commas.
    expect(scan(elements(MAX_JSON_ITEMS))).toBeNull();
    expect(scan(elements(MAX_JSON_ITEMS + 2))).toBe("items");
    expect(scan(`[${Array.from({ length: MAX_JSON_ITEMS }, () => "{}").join(",")}]`)).toBe("items");
  });

  it("leaves malformed text to JSON.parse", () => {
    expect(scan('{"unterminated')).toBeNull();
    expect(scan("]]]]")).toBeNull();
  });
});

describe("registerJsonBodyParser", () => {
  const app = () => {
    const instance = Fastify();
    registerJsonBodyParser(instance);
    instance.post("/echo", (request, reply) => {
      void reply.send({ got: request.body });
    });
    return instance;
  };
  const post = (payload: string) =>
    app().inject({ method: "POST", url: "/echo", headers: { "content-type": "application/json" }, payload });

  it("parses ordinary JSON as fastify does", async () => {
    const res = await post('{"a":[1,{"b":"c"}]}');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ got: { a: [1, { b: "c" }] } });
  });

  it("refuses a body nested too deeply with 400 before parsing it, naming the limit and not the body", async () => {
    const res = await post(`{"secret-canary":${nested(3_300)}}`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: "ERR_JSON_TOO_DEEP" });
    expect(res.body).toContain(`deeper than ${MAX_JSON_DEPTH} levels`);
    expect(res.body).not.toContain("secret-canary");
  });

  it("keeps fastify's refusals: prototype poisoning, malformed and empty bodies", async () => {
    expect((await post('{"__proto__":{"x":1}}')).statusCode).toBe(400);
    expect((await post('{"a":')).statusCode).toBe(400);
    expect((await post("")).statusCode).toBe(400);
  });
});
