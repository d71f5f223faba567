"""bench/scale.py's simulation: its numbers come from AWS's documents, and its model does what the
report relies on: the event source scales as documented, the provider throttles a sender that does
not pace, a key asked for more than its write units is throttled, and the issue's small batch runs
at half the MPS under per-instance pacing. All on a virtual clock: deterministic, nothing timed."""
from __future__ import annotations

import json
import re

import pytest

from bench import scale

NUMBER_WORDS = {5: "five"}


def test_the_event_source_numbers_are_the_documented_ones():
    fixture = json.loads((scale.DOCS / "lambda-sqs-scaling.json").read_text())
    assert fixture["source"] == "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", fixture["retrieved"])
    for entry in fixture["numbers"].values():
        assert entry["words"] in fixture["quote"]
        value = entry["value"]
        assert f"{value:,}" in entry["words"] or NUMBER_WORDS.get(value, "?") in entry["words"]
    assert scale.event_source_scaling() == {"initial_batches": 5, "added_per_minute": 300, "max_batches": 1000}


def test_the_partition_limit_is_the_documented_one():
    assert scale.partition_write_units() == 1000


def test_the_event_source_starts_five_instances_and_adds_five_a_second_up_to_the_maximum():
    result = scale.drain(scale.NEW, 1000, scale.messages(20_000))
    launches = result["launches"]
    assert launches[:5] == [0.0] * 5
    gaps = [b - a for a, b in zip(launches[5:], launches[6:])]
    assert gaps and all(gap == pytest.approx(60 / 300) for gap in gaps)
    assert len(launches) == result["instances"] == 50


def test_a_sender_that_does_not_pace_is_throttled_and_the_new_design_is_not():
    unpaced = scale.Design("unpaced", lambda mps, n, items, clock, rng: scale.pacing.TokenBucket(1e9, clock=clock),
                           scale.worker.senders_for, scale.NEW.claim_keys, scale.NEW.status_keys)
    queued = scale.messages(600)
    assert scale.drain(unpaced, 20, queued)["provider_throttles"] > 0
    paced = scale.drain(scale.NEW, 20, queued)
    assert paced["provider_throttles"] == 0
    # Over any second, the provider took no more than its MPS plus its one second of burst.
    sends = sorted(paced["sends"])
    assert max(sum(p for t, p in sends if start <= t < start + 1) for start, _ in sends) <= 2 * 20


def test_one_key_for_every_message_is_throttled_at_1000_mps_and_the_sharded_keys_are_not():
    queued = scale.messages(20_000)
    today, new = scale.drain(scale.TODAY, 1000, queued), scale.drain(scale.NEW, 1000, queued)
    assert today["hot_key"] == "list index" and today["hot"] > 1000 and today["dynamodb_throttles"] > 0
    assert new["hot"] < 1000 and new["dynamodb_throttles"] == 0
    assert new["ratio"] > 2 * today["ratio"]


def test_ten_messages_at_3_mps_take_twice_the_ideal_under_per_instance_pacing():
    """The issue's example: ten messages fit one batch, so one instance sends them, at half the MPS
    when each paces to its share; the shared schedule gives it the whole MPS."""
    queued = scale.messages(10)
    assert scale.drain(scale.TODAY, 3, queued)["drain_ratio"] == pytest.approx(2, rel=0.1)
    assert scale.drain(scale.NEW, 3, queued)["drain_ratio"] == pytest.approx(1, rel=0.1)


def test_the_report_counters_make_no_hot_key_at_1000_mps_and_batching_them_cuts_the_transactions():
    """The tally at 1,000 MPS (accept and settle: 2,000 counted records a second): no counter item is asked for
    1,000 write units in a second, one transaction per record would make 2,000 transactions a second nearly all
    overlapping another on the same item (each a TransactionConflict to retry), and the tally's batches make
    a fiftieth of them; the stream never falls behind. A 30-day report reads a bounded number of items."""
    per_record, batched = scale.tally_drain("per record"), scale.tally_drain("batched")
    assert per_record["tx"] == pytest.approx(2 * scale.TALLY_MPS, rel=0.01)
    assert batched["tx"] < per_record["tx"] / 20
    assert per_record["hot"] < 1000 and batched["hot"] < 100
    assert per_record["conflicts"] > 0.5 > batched["conflicts"]
    assert batched["lag"] < 5
    from chalicelib.reports import daily

    assert daily.items_for(30) == 30 * 16 * 2 == 960


def test_a_hot_key_would_show_in_the_tally_simulation():
    """The model counts what one key is asked for: one counter item for everything would pass 1,000."""
    from chalicelib.core import schema

    original = schema.REPORT_SHARDS
    try:
        schema.REPORT_SHARDS = 1
        crowded = scale.tally_drain("per record")
    finally:
        schema.REPORT_SHARDS = original
    assert crowded["hot"] > 1000


def test_a_minute_of_100000_scheduled_messages_meets_every_target_and_the_claim_writes_the_due_index():
    """The scheduled section's targets hold: creates, the sweep's run and the drain stay under the per-key
    limit, the sweep finishes within its minute, the drain runs at the MPS without throttles."""
    result = scale.scheduled()
    _heading, rows = scale.scheduled_rows(result)
    assert [label for label, _value, _target, ok in rows if ok is False] == []
    assert result["drain"]["messages"] == 100_000 and result["sweep"]["calls"] == 10_000
    message = scale.messages(1)[0]
    assert scale.SCHEDULED_DESIGN.claim_keys(message)[0].startswith("due#")  # the claim deletes the due entry


def test_one_sweep_without_threads_would_not_finish_within_its_minute():
    queued = scale.messages(100_000)
    assert scale.sweep_run(queued, senders=1)["seconds"] > 60 > scale.sweep_run(queued)["seconds"]


def test_a_create_burst_past_8000_a_second_puts_a_key_over_its_limit():
    """The creates' figure can fail: the due index takes one write per create on 8 keys, as the list index does."""
    queued = scale.messages(40_000)
    assert scale.creates(queued, rate=10_000)["due"][1] > 1000 > scale.creates(queued)["due"][1]
