import assert from "node:assert/strict";
import { mock, test } from "node:test";
import { Debouncer } from "../src/debounce";

test("only the last call within the delay runs", () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const ran: string[] = [];
    const debouncer = new Debouncer(250);
    debouncer.schedule(() => ran.push("r"));
    mock.timers.tick(100);
    debouncer.schedule(() => ran.push("re"));
    mock.timers.tick(249);
    assert.deepEqual(ran, []);
    assert.equal(debouncer.pending, true);
    mock.timers.tick(1);
    assert.deepEqual(ran, ["re"]);
    assert.equal(debouncer.pending, false);
  } finally {
    mock.timers.reset();
  }
});

test("cancel drops the waiting call", () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    let ran = false;
    const debouncer = new Debouncer(50);
    debouncer.schedule(() => {
      ran = true;
    });
    debouncer.cancel();
    mock.timers.tick(1000);
    assert.equal(ran, false);
  } finally {
    mock.timers.reset();
  }
});
