import assert from "node:assert/strict";
import { test } from "node:test";
import { debounceMs, initializationOptions, serverEnvironment, type SettingReader } from "../src/settings";

function reader(values: Record<string, unknown>): SettingReader {
  return <T>(key: string) => values[key] as T | undefined;
}

test("unset and empty settings leave the server's defaults", () => {
  assert.deepEqual(initializationOptions(reader({})), {});
  assert.deepEqual(initializationOptions(reader({ model: " ", device: "", indexDir: "", exclude: [] })), {});
});

test("every setting maps to its initializationOption", () => {
  const options = initializationOptions(
    reader({
      model: " /models/mini ",
      device: "cpu",
      indexDir: "/tmp/index",
      exclude: ["vendor/**", "", 3, "*.gen.rs"],
      topK: 25,
      maxFileSize: 4096,
      hover: false,
    }),
  );
  assert.deepEqual(options, {
    model: "/models/mini",
    device: "cpu",
    indexDir: "/tmp/index",
    exclude: ["vendor/**", "*.gen.rs"],
    topK: 25,
    maxFileSize: 4096,
    hover: false,
  });
});

test("out-of-range numbers go to the server unchanged, which refuses them with a reason", () => {
  assert.equal(initializationOptions(reader({ topK: 0 })).topK, 0);
  assert.equal(initializationOptions(reader({ topK: 2.5 })).topK, undefined);
});

test("the log level becomes CODER_LSP_LOG", () => {
  assert.deepEqual(serverEnvironment(reader({ logLevel: "debug" })), { CODER_LSP_LOG: "debug" });
  assert.deepEqual(serverEnvironment(reader({ logLevel: "loud" })), { CODER_LSP_LOG: "info" });
});

test("the search debounce is clamped", () => {
  assert.equal(debounceMs(reader({})), 250);
  assert.equal(debounceMs(reader({ "search.debounceMs": -5 })), 0);
  assert.equal(debounceMs(reader({ "search.debounceMs": 90000 })), 5000);
});
