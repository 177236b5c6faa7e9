import { expect, it } from "vitest";
import { sideBySide } from "./DocumentView";

it("pairs removals with the additions that follow them, context on both sides", () => {
  const rows = sideBySide("--- v1\n+++ v2\n@@ -1,3 +1,3 @@\n same\n-old one\n-old two\n+new one\n tail");
  expect(rows.map(([l, r]) => `${l.kind}${l.text}|${r.kind}${r.text}`)).toEqual([
    " same| same",
    "-old one|+new one",
    "-old two| ",
    " tail| tail",
  ]);
});
