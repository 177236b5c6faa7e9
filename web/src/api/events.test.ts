import { describe, expect, it } from "vitest";
import { parse } from "./events";

describe("parse", () => {
  it("reads id, event and data", () => {
    expect(parse('id: 7\nevent: queued\ndata: {"a":1}')).toEqual({ id: "7", event: "queued", data: '{"a":1}' });
  });
  it("joins data lines and skips comments", () => {
    expect(parse(": heartbeat\ndata: one\ndata: two")).toEqual({ data: "one\ntwo" });
  });
  it("keeps an id-only frame (a stream's position) without data", () => {
    expect(parse("id: 42")).toEqual({ id: "42" });
  });
  it("takes a value without the optional space", () => {
    expect(parse("id:5\ndata:x")).toEqual({ id: "5", data: "x" });
  });
});
