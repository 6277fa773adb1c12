"""Benchmark: change-data events end to end, next to raw kafka-python on the same broker.

    .venv/bin/python bench/cdc.py [--changes 20000] [--rate 1000] [--seconds 10]

Starts a Tansu broker, two PostgreSQL databases (monolith, catalog service), the relay and the
consumer as real processes. Measures
  1. throughput: N product rows inserted in the monolith (2,000 per transaction) until all N
     are in the service database -> changes_per_s, and the CPU seconds the relay and the
     consumer used for it per 1,000 changes -> relay_cpu_s_per_1000, consumer_cpu_s_per_1000;
  1b. catch-up after a relay outage: the relay stopped, N more rows written, the relay started
     again; from its "running" line until all N are in the service -> catch_up_per_s (the
     pipeline alone, no monolith writes beside it: how fast a backlog drains);
  2. lag at a fixed rate: one-row updates at --rate per second; lag = time the row was written
     in the service database (a bench-only trigger stamps it) minus the time of the write
     in the monolith -> p50/p99;
  3. the peer: raw kafka-python, one producer sending N messages of the same size and one
     consumer reading them, on the same broker -> raw_kafka_per_s; and the rate of the
     monolith's own inserts in step 1 (capture triggers included, relay and consumer running)
     against it -> writes_ratio_vs_raw_kafka, the ceiling of ratio_vs_raw_kafka;
  4. the broker restarted (memory storage: everything on it is gone), then the relay and the
     consumer: one update in the monolith until it is in the service
     -> first_change_after_broker_restart_s.
The last line is one JSON object (with kafka_crc32c: whether both sides checksummed record
batches in C or in pure Python, which bounds the peer's rate).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.record import util as kafka_record_util

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from strangler.cdc.embedded import (  # noqa: E402
    CONSUMER_OPTIONS,
    free_port,
    start_tansu,
    terminate,
)

PG = "postgresql://postgres@127.0.0.1:5432"
# Statement-level, so the bench's own instrument costs the service database one INSERT per
# applied statement, not one PL/pgSQL call per row (the capture triggers' price is the product's).
STAMP_TRIGGER = """
CREATE TABLE bench_applied (id bigint, description text, applied_at double precision);
CREATE FUNCTION bench_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_applied
    SELECT id, description, extract(epoch from clock_timestamp()) FROM changed;
    RETURN NULL;
END $$;
CREATE TRIGGER bench_stamp_insert AFTER INSERT ON catalog_product
REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bench_stamp();
CREATE TRIGGER bench_stamp_update AFTER UPDATE ON catalog_product
REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bench_stamp();
"""


def sql(url: str, statement: str, params: tuple | None = None) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def manage(module: str, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def cpu_seconds(process: subprocess.Popen) -> float:
    """User + system CPU seconds a running process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(predicate, timeout: float, what: str, every: float = 0.02) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(every)
    raise SystemExit(f"bench: timed out waiting for {what}")


def timed_updates(url: str, ids: list[int], rate: int, total: int, writers: int = 4) -> float:
    """`total` one-row updates at `rate`/s from `writers` connections; returns the rate achieved.

    Several connections, because one autocommit connection waits for each commit's WAL flush.
    """
    interval = 1.0 / rate
    begin = time.monotonic() + 0.2

    def write(first: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            for i in range(first, total, writers):
                pause = begin + i * interval - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                conn.execute(
                    "UPDATE catalog_product SET description = %s WHERE id = %s",
                    (f"lag:{time.time():.6f}", ids[i % len(ids)]),
                )

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return total / (time.monotonic() - begin)


class Progress:
    """Samples of (seconds, outbox rows published, rows in the service) while draining."""

    def __init__(self, mono_url: str, svc_url: str, start: float) -> None:
        self.mono_url, self.svc_url, self.start = mono_url, svc_url, start
        self.samples: list[tuple[float, int, int]] = []

    def sample(self) -> int:
        published = sql(
            self.mono_url,
            "SELECT COUNT(*) FROM strangler_cdc_outbox WHERE published_at IS NOT NULL",
        )[0][0]
        applied = sql(self.svc_url, "SELECT COUNT(*) FROM catalog_product")[0][0]
        self.samples.append((round(time.monotonic() - self.start, 1), published, applied))
        return applied


def raw_kafka(bootstrap: str, count: int, size: int) -> float:
    """Messages/s of one kafka-python producer -> one consumer, first send to last receive."""
    topic = f"bench-raw-{uuid.uuid4().hex[:6]}"
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024
    )
    producer.send(topic, key=b"warm", value=b"x").get(10)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_end()
    for tp in partitions:
        consumer.position(tp)
    payload = b"x" * size
    start = time.monotonic()
    for i in range(count):
        producer.send(topic, key=str(i).encode(), value=payload)
    producer.flush()
    received = 0
    deadline = time.monotonic() + 120
    while received < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200, max_records=5000).values():
            received += len(records)
    elapsed = time.monotonic() - start
    producer.close()
    consumer.close()
    return received / elapsed


def insert_products(url: str, category: int, first: int, count: int, per_tx: int = 2000) -> None:
    """`count` product rows from sku B-`first` on, `per_tx` to a transaction."""
    for start in range(first, first + count, per_tx):
        last = min(first + count, start + per_tx)
        sql(
            url,
            "INSERT INTO catalog_product (sku, slug, name, description, price, currency, "
            "is_active, category_id, created_at, updated_at) "
            "SELECT 'B-' || i, 'b-' || i, 'Bench product ' || i, 'bench', 9.99 + i, "
            "'EUR', true, %s, now(), now() FROM generate_series(%s::int, %s::int) AS i",
            (category, start, last - 1),
        )


def wait_for_line(log: Path, line: str, timeout: float) -> None:
    wait_until(lambda: line in log.read_text(errors="replace"), timeout, f"{line!r} in {log}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    tag = uuid.uuid4().hex[:8]
    mono_db, svc_db = f"strangler_cdc_bench_{tag}", f"strangler_catalog_service_bench_{tag}"
    mono_url, svc_url = f"{PG}/{mono_db}", f"{PG}/{svc_db}"
    port = free_port()
    broker = start_tansu(port)
    bootstrap = f"127.0.0.1:{port}"
    processes: list[subprocess.Popen] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-cdc-"))
    try:
        for name in (mono_db, svc_db):
            sql(f"{PG}/postgres", f'CREATE DATABASE "{name}"')
        env = dict(os.environ) | {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "MONOLITH_VAR_DIR": str(tmp / "monolith"),
            "CATALOG_VAR_DIR": str(tmp / "catalog"),
            "CDC_KAFKA_CONSUMER_OPTIONS": json.dumps(CONSUMER_OPTIONS),
            "DATABASE_URL": mono_url,
            "CATALOG_DATABASE_URL": svc_url,
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)
        for module in ("monolith.manage", "extracted.catalog_service.manage"):
            subprocess.run(
                [sys.executable, "-m", module, "migrate", "-v0"], cwd=REPO, env=env, check=True
            )
        sql(svc_url, STAMP_TRIGGER)
        category = sql(
            mono_url,
            "INSERT INTO catalog_category (name, slug, description, created_at, updated_at) "
            "VALUES ('Bench', 'bench', '', now(), now()) RETURNING id",
        )[0][0]
        processes.append(manage("monolith.manage", ["cdc_relay"], env, tmp / "relay.log"))
        processes.append(
            manage("extracted.catalog_service.manage", ["cdc_consume"], env, tmp / "consumer.log")
        )
        wait_until(lambda: sql(svc_url, "SELECT 1 FROM catalog_category"), 60, "warm-up", 0.1)

        # 1. throughput
        cpu_before = [cpu_seconds(p) for p in processes]
        start, start_wall = time.monotonic(), time.time()
        insert_products(mono_url, category, 0, args.changes)
        written = time.monotonic()
        progress = Progress(mono_url, svc_url, start)
        wait_until(lambda: progress.sample() >= args.changes, 300, "all rows", 0.25)
        # The last row's own stamp, not the poll that saw it (a quarter second late at most).
        last_applied = sql(
            svc_url, "SELECT max(applied_at) FROM bench_applied WHERE description = 'bench'"
        )[0][0]
        done = start + (last_applied - start_wall)
        print(
            f"  monolith writes took {written - start:.2f}s; "
            f"(seconds, published, in service): {progress.samples[::4]}"
        )
        changes_per_s = args.changes / (done - start)
        relay_cpu, consumer_cpu = (
            (cpu_seconds(p) - before) * 1000 / args.changes
            for p, before in zip(processes, cpu_before, strict=True)
        )
        print(
            f"end to end: {args.changes} row changes in {done - start:.2f}s = "
            f"{changes_per_s:,.0f} changes/s; CPU per 1,000 changes: relay {relay_cpu:.3f}s, "
            f"consumer {consumer_cpu:.3f}s"
        )

        # 1b. catch-up after a relay outage
        terminate(processes[0])
        insert_products(mono_url, category, args.changes, args.changes)
        relay_log = tmp / "relay-catch-up.log"
        processes[0] = manage("monolith.manage", ["cdc_relay"], env, relay_log)
        wait_for_line(relay_log, "cdc relay running", 60)
        resumed = time.monotonic()
        wait_until(
            lambda: sql(svc_url, "SELECT COUNT(*) FROM catalog_product")[0][0] >= 2 * args.changes,
            300,
            "the backlog in the service",
            0.1,
        )
        catch_up_per_s = args.changes / (time.monotonic() - resumed)
        print(
            f"catch-up after a relay outage: {args.changes} changes at "
            f"{catch_up_per_s:,.0f} changes/s"
        )

        # 2. lag at a fixed rate
        ids = [row[0] for row in sql(mono_url, "SELECT id FROM catalog_product ORDER BY id")]
        total = int(args.rate * args.seconds)
        achieved = timed_updates(mono_url, ids, args.rate, total)
        wait_until(
            lambda: (
                sql(svc_url, "SELECT COUNT(*) FROM bench_applied WHERE description LIKE 'lag:%%'")[
                    0
                ][0]
                >= total
            ),
            120,
            "every timed update in the service",
            0.1,
        )
        lags = sorted(
            (applied - float(description[4:])) * 1000
            for description, applied in sql(
                svc_url,
                "SELECT description, applied_at FROM bench_applied WHERE description LIKE 'lag:%%'",
            )
        )
        p50 = statistics.median(lags)
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        print(
            f"lag at {achieved:,.0f} changes/s ({total} changes): "
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms"
        )

        # 3. the peer
        size = len(sql(mono_url, "SELECT after::text FROM strangler_cdc_outbox LIMIT 1")[0][0])
        raw = raw_kafka(bootstrap, args.changes, size + 120)
        print(
            f"raw kafka-python on the same broker: {raw:,.0f} messages/s "
            f"({size + 120}-byte messages)"
        )
        ratio = changes_per_s / raw
        print(f"ratio end-to-end / raw kafka: {ratio:.3f}")
        print(f"catch-up / raw kafka: {catch_up_per_s / raw:.3f}")
        # End to end cannot finish before the last monolith write it carries.
        writes_per_s = args.changes / (written - start)
        print(
            f"the monolith's writes alone: {writes_per_s:,.0f} changes/s, "
            f"{writes_per_s / raw:.3f} of raw kafka (the ceiling of the ratio above)"
        )

        # 4. the broker restarts (memory storage: its log, topics and group offsets are gone).
        # Tansu creates a topic on any client's metadata request, with 4 partitions, whatever
        # the client asks: a consumer kept polling would recreate the topics with a count the
        # relay refuses (docs/cdc.md). So, as docs/cdc.md says for the embedded broker: stop
        # the consumer, restart the broker, then the relay (it creates the topics), then the
        # consumer.
        for process in processes:
            terminate(process)
        terminate(broker)
        restarted = time.monotonic()
        broker = start_tansu(port)
        processes[:] = [
            manage("monolith.manage", ["cdc_relay"], env, tmp / "relay.log"),
            manage("extracted.catalog_service.manage", ["cdc_consume"], env, tmp / "consumer.log"),
        ]
        sql(mono_url, "UPDATE catalog_product SET name = 'after restart' WHERE id = %s", (ids[0],))
        wait_until(
            lambda: sql(
                svc_url,
                "SELECT 1 FROM catalog_product WHERE id = %s AND name = 'after restart'",
                (ids[0],),
            ),
            120,
            "the first change after the broker restart",
            0.05,
        )
        after_restart = time.monotonic() - restarted
        print(
            f"first change after a broker restart (relay and consumer restarted): in the "
            f"service after {after_restart:.1f}s"
        )
        from record import publish  # the last line, kept in bench/results/cdc.json

        publish(
            "cdc",
            {
                "changes": args.changes,
                "changes_per_s": round(changes_per_s, 1),
                "relay_cpu_s_per_1000": round(relay_cpu, 3),
                "consumer_cpu_s_per_1000": round(consumer_cpu, 3),
                "lag_rate_per_s": round(achieved, 1),
                "lag_p50_ms": round(p50, 1),
                "lag_p99_ms": round(p99, 1),
                "raw_kafka_per_s": round(raw, 1),
                "ratio_vs_raw_kafka": round(ratio, 4),
                "monolith_writes_per_s": round(writes_per_s, 1),
                "catch_up_per_s": round(catch_up_per_s, 1),
                "catch_up_ratio_vs_raw_kafka": round(catch_up_per_s / raw, 4),
                "writes_ratio_vs_raw_kafka": round(writes_per_s / raw, 4),
                "first_change_after_broker_restart_s": round(after_restart, 2),
                # Both sides checksum every record batch: in C, or in pure Python (CPU-bound).
                "kafka_crc32c": "C" if kafka_record_util.crc32c_c is not None else "python",
            },
        )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        terminate(broker)
        for name in (mono_db, svc_db):
            sql(f"{PG}/postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
