import { describe, expect, it, vi } from "vitest";

/** Just enough of EventSource to push events by hand. */
class FakeSource {
  static CLOSED = 2;
  static last: FakeSource | null = null;
  readyState = 1;
  url: string;
  listeners = new Map<string, ((event: { data: string }) => void)[]>();
  constructor(url: string) {
    this.url = url;
    FakeSource.last = this;
  }
  addEventListener(name: string, fn: (event: { data: string }) => void) {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), fn]);
  }
  fire(name: string, data: unknown = {}) {
    for (const fn of this.listeners.get(name) ?? []) fn({ data: JSON.stringify(data) });
  }
  close() {
    this.readyState = 2;
  }
}

vi.stubGlobal("EventSource", FakeSource);
vi.stubGlobal("window", { setTimeout, clearTimeout });

const { connectFeed, feedStatus, listen, loadWithEvents } = await import("./realtime");

describe("live feed", () => {
  it("passes the token in the query and syncs on every (re)open", () => {
    const syncs: number[] = [];
    const stop = listen({ onSync: () => syncs.push(1) });
    connectFeed("tok en", () => undefined);
    const source = FakeSource.last!;
    expect(source.url).toBe("/api/realtime/events?token=tok%20en");
    expect(feedStatus.get()).toBe("connecting");
    source.fire("open");
    expect(feedStatus.get()).toBe("live");
    source.fire("error");
    expect(feedStatus.get()).toBe("reconnecting");
    source.fire("open");
    expect(syncs).toHaveLength(2);
    stop();
  });

  it("hands a load the events that arrived while it ran", async () => {
    connectFeed("t", () => undefined);
    const source = FakeSource.last!;
    let answer: (value: string) => void = () => undefined;
    const pending = loadWithEvents(() => new Promise<string>((resolve) => (answer = resolve)));
    source.fire("job", { id: "j1", status: "running" });
    source.fire("qpu", { id: "q1", status: "online" });
    source.fire("job", { id: "j1", status: "completed" });
    answer("snapshot");
    const [value, missed] = await pending;
    expect(value).toBe("snapshot");
    expect(missed).toEqual([
      { job: { id: "j1", status: "running" } },
      { qpu: { id: "q1", status: "online" } },
      { job: { id: "j1", status: "completed" } },
    ]);
    // Events after the load finished are no longer collected.
    source.fire("job", { id: "j2", status: "pending" });
    expect(missed).toHaveLength(3);
  });
});
