import { expect, it } from "vitest";
import { nextRuns } from "./Automation";

it("previews the next five fire times of a cron in its time zone", () => {
  const runs = nextRuns("30 9 * * 1-5", "UTC");
  expect(Array.isArray(runs) && runs.length).toBe(5);
  for (const d of runs as Date[]) {
    expect([d.getUTCHours(), d.getUTCMinutes()]).toEqual([9, 30]);
    expect([0, 6]).not.toContain(d.getUTCDay());
  }
  const times = (runs as Date[]).map((d) => d.getTime());
  expect([...times].sort((a, b) => a - b)).toEqual(times);
});

it("says why a cron is not one", () => {
  expect(typeof nextRuns("61 * * * *", "UTC")).toBe("string");
  expect(typeof nextRuns("0 9 * * *", "Mars/Olympus")).toBe("string");
});
