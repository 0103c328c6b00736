import { test } from "node:test";
import * as assert from "node:assert/strict";
import { RestartQueue } from "../logic/restartQueue";

/** A task whose runs we finish by hand, recording overlaps. */
function controlledTask() {
  const state = { started: 0, active: 0, maxActive: 0, finishers: [] as Array<(error?: Error) => void> };
  const task = () =>
    new Promise<void>((resolve, reject) => {
      state.started++;
      state.active++;
      state.maxActive = Math.max(state.maxActive, state.active);
      state.finishers.push((error) => {
        state.active--;
        if (error) reject(error);
        else resolve();
      });
    });
  return { state, task };
}

async function until(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !predicate(); i++) await new Promise<void>((r) => setImmediate(r));
  assert.ok(predicate(), "condition never became true");
}

test("restarts never overlap", async () => {
  const { state, task } = controlledTask();
  const queue = new RestartQueue(task);
  const first = queue.request();
  await until(() => state.started === 1);
  const second = queue.request();
  await new Promise<void>((r) => setImmediate(r));
  assert.equal(state.started, 1, "the second restart must wait for the first");
  state.finishers[0]();
  await first;
  await until(() => state.started === 2);
  assert.equal(state.maxActive, 1);
  state.finishers[1]();
  await second;
});

test("requests made while a restart waits share it", async () => {
  const { state, task } = controlledTask();
  const queue = new RestartQueue(task);
  const first = queue.request();
  await until(() => state.started === 1);
  const a = queue.request();
  const b = queue.request();
  const c = queue.request();
  assert.equal(a, b);
  assert.equal(b, c);
  state.finishers[0]();
  await first;
  await until(() => state.started === 2);
  state.finishers[1]();
  await Promise.all([a, b, c]);
  assert.equal(state.started, 2);
});

test("a failed restart rejects its callers and the next one still runs", async () => {
  const { state, task } = controlledTask();
  const queue = new RestartQueue(task);
  const first = queue.request();
  await until(() => state.started === 1);
  const second = queue.request();
  state.finishers[0](new Error("spawn failed"));
  await assert.rejects(first, /spawn failed/);
  await until(() => state.started === 2);
  state.finishers[1]();
  await second;
  await queue.idle();
});

test("idle resolves after everything requested so far, even after a failure", async () => {
  const { state, task } = controlledTask();
  const queue = new RestartQueue(task);
  const first = queue.request();
  first.catch(() => undefined);
  let idle = false;
  const idlePromise = queue.idle().then(() => {
    idle = true;
  });
  await until(() => state.started === 1);
  assert.equal(idle, false);
  state.finishers[0](new Error("boom"));
  await idlePromise;
  assert.equal(idle, true);
});
