#!/usr/bin/env node
// bench/peers/peer.js QUEUE SOCKET_DIR DATABASE JOBS
//
// Runs JOBS no-op jobs through one of the PostgreSQL job queues railyard is
// measured against, on the benchmark's own server, with the settings their
// authors publish for throughput, and prints one line:
//   rate=JOBS_PER_S jobs=N first=EPOCH last=EPOCH
// QUEUE is graphile (Graphile Worker 0.17.3: its performance page's
// configuration, concurrentJobs 24, maxPoolSize 25, localQueue 500,
// completeJobBatchDelay 0, failJobBatchDelay 0) or pgboss (pg-boss 10.4.2:
// 10 workers, batchSize 1000, the shortest polling interval it accepts,
// completed jobs kept in its job table).
//
// The jobs are queued before the clock starts (as railyard's are bulk
// submitted).  The rate runs from the first job handed to a handler to the
// last completion stored: pg-boss stamps both in its job table (started_on,
// completed_on); Graphile Worker deletes a job when it completes, so its end
// is when its job table is first seen empty (polled every 5 ms).  A run in
// which not every job ran exactly once exits 1 with the reason on stderr.

"use strict";

const [, , queue, socketDir, database, jobsArg] = process.argv;
const jobs = Number(jobsArg);
if (!["graphile", "pgboss"].includes(queue) || !socketDir || !database || !(jobs > 0)) {
  process.stderr.write("usage: peer.js graphile|pgboss SOCKET_DIR DATABASE JOBS\n");
  process.exit(2);
}
const { Pool } = require("pg");
const pgConfig = { host: socketDir, port: 5432, user: "railyard", database };

function fail(why) {
  process.stderr.write(`peer.js ${queue}: ${why}\n`);
  process.exit(1);
}

function nap(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function graphile() {
  const { run, runMigrations } = require("graphile-worker");
  const preset = {
    worker: {
      concurrentJobs: 24,
      maxPoolSize: 25,
      localQueue: { size: 500 },
      completeJobBatchDelay: 0,
      failJobBatchDelay: 0,
    },
  };
  const pgPool = new Pool({ ...pgConfig, max: 26 });
  pgPool.on("error", (e) => fail(e.message));
  pgPool.on("connect", (client) => client.on("error", (e) => fail(e.message)));
  await runMigrations({ pgPool, preset });
  // Queued in batches of 1,000 with its own add_jobs, before the clock.
  for (let done = 0; done < jobs; done += 1000) {
    const n = Math.min(1000, jobs - done);
    await pgPool.query(
      "SELECT graphile_worker.add_jobs(array_agg(ROW('noop', json_build_object('i', g), NULL::text, NULL::timestamptz, NULL::int, NULL::text, NULL::int, NULL::text[])::graphile_worker.job_spec)) FROM generate_series(1, $1) g",
      [n],
    );
  }
  let ran = 0;
  let first = 0;
  const runner = await run({
    pgPool,
    preset,
    noHandleSignals: true,
    logger: new (require("graphile-worker").Logger)(() => () => {}),
    taskList: {
      noop: async () => {
        if (!first) first = Date.now();
        ran++;
      },
    },
  });
  const watch = new Pool({ ...pgConfig, max: 1 });
  let last = 0;
  for (;;) {
    if (ran >= jobs) {
      const { rows } = await watch.query("SELECT count(*)::int AS n FROM graphile_worker._private_jobs");
      if (rows[0].n === 0) {
        last = Date.now();
        break;
      }
    }
    await nap(5);
  }
  await runner.stop();
  await watch.end();
  await pgPool.end();
  if (ran !== jobs) fail(`${ran} handler calls for ${jobs} jobs`);
  return { first: first / 1000, last: last / 1000 };
}

async function pgboss() {
  const PgBoss = require("pg-boss");
  const boss = new PgBoss({ ...pgConfig, max: 12, supervise: false, schedule: false });
  boss.on("error", (e) => fail(e.message));
  await boss.start();
  await boss.createQueue("noop");
  for (let done = 0; done < jobs; done += 1000) {
    const n = Math.min(1000, jobs - done);
    await boss.insert(Array.from({ length: n }, (_, i) => ({ name: "noop", data: { i: done + i } })));
  }
  let ran = 0;
  const options = { batchSize: 1000, pollingIntervalSeconds: 0.5 };
  for (let w = 0; w < 10; w++) {
    await boss.work("noop", options, async (batch) => {
      ran += batch.length;
    });
  }
  const watch = new Pool({ ...pgConfig, max: 1 });
  let row;
  for (;;) {
    const { rows } = await watch.query(
      `SELECT count(*) FILTER (WHERE state = 'completed')::int AS done,
              extract(epoch FROM min(started_on)) AS first,
              extract(epoch FROM max(completed_on)) AS last
         FROM pgboss.job WHERE name = 'noop'`,
    );
    row = rows[0];
    if (row.done >= jobs) break;
    await nap(100);
  }
  await boss.stop({ graceful: true, wait: true, close: true });
  await watch.end();
  if (ran !== jobs) fail(`${ran} handler calls for ${jobs} jobs`);
  return { first: Number(row.first), last: Number(row.last) };
}

(queue === "graphile" ? graphile() : pgboss())
  .then(({ first, last }) => {
    if (!(last > first)) fail("no time elapsed between the first and last job");
    const rate = jobs / (last - first);
    process.stdout.write(`rate=${rate.toFixed(1)} jobs=${jobs} first=${first} last=${last}\n`);
    process.exit(0);
  })
  .catch((e) => fail(e.stack || String(e)));
