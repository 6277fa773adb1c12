"""`cdc dead-letters list|replay` filters, and a replay that matches nothing says so."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from strangler.cdc import deadletters
from strangler.cdc.conf import MappingSpec
from strangler.cdc.envelope import Envelope, OutboxRow, encode
from strangler.cdc.mapping import TableMapping, resolve
from strangler.cdc.models import DeadLetter

pytestmark = pytest.mark.django_db


def park(table: str, key: str) -> None:
    DeadLetter.objects.create(topic=f"monolith.{table}", partition=0, offset=int(key),
                              source_table=table, key=key, seq=int(key), envelope="{}",
                              fingerprint=key, error="refused", attempts=1)  # fmt: skip


def listed(capsys, *args: str) -> list[tuple[str, str]]:
    call_command("cdc_deadletters", "list", "--json", *args)
    return [(row["table"], row["key"]) for row in json.loads(capsys.readouterr().out)]


def test_list_shows_only_the_table_and_key_asked_for(capsys):
    park("catalog_product", "1")
    park("catalog_product", "2")
    park("catalog_category", "1")

    assert listed(capsys, "--table", "catalog_product") == [
        ("catalog_product", "1"),
        ("catalog_product", "2"),
    ]
    assert listed(capsys, "--key", "1") == [("catalog_product", "1"), ("catalog_category", "1")]
    assert listed(capsys, "--table", "catalog_category", "--key", "1") == [
        ("catalog_category", "1")
    ]


def test_a_replay_that_matches_no_pending_letter_fails_and_says_what_to_look_at(capsys):
    park("catalog_product", "1")

    with pytest.raises(SystemExit) as raised:
        call_command("cdc_deadletters", "replay", "--key", "777", "--discard")

    assert raised.value.code == 1
    said = capsys.readouterr().err
    assert "no pending dead letters match --key 777" in said
    assert "dead-letters list" in said
    assert DeadLetter.objects.filter(replayed_at__isnull=True).count() == 1  # nothing touched


def test_an_unknown_table_is_a_usage_error_naming_the_mapped_tables():
    with pytest.raises(CommandError) as raised:
        call_command("cdc_deadletters", "list", "--table", "catalog.Product")

    assert raised.value.returncode == 2
    assert "'catalog.Product' is not a source table" in str(raised.value)
    assert "catalog_product" in str(raised.value)


def test_a_replay_with_nothing_pending_says_so(capsys):
    call_command("cdc_deadletters", "replay")

    assert capsys.readouterr().out.strip() == "no pending dead letters: nothing to replay"


def park_event(seq: int, key: str = "7") -> None:
    """Park a decodable update of catalog_product[key] with this seq, as the consumer does."""
    row = OutboxRow(seq, "catalog", "catalog_product", key, "u", 1, 1, None, '{"id": 7}', 1)
    DeadLetter.objects.create(topic="monolith.catalog_product", partition=0, offset=seq,
                              source_table="catalog_product", key=key, seq=seq,
                              envelope=encode(row).decode(), fingerprint=f"{key}-{seq}",
                              error="refused", attempts=1)  # fmt: skip


def park_newer_until_3(event: Envelope, mapping: TableMapping, using: str) -> None:
    """A handler: while the replay applies an event, the consumer parks the key's next one."""
    if event.seq < 3:
        park_event(event.seq + 1)


def park_newer_forever(event: Envelope, mapping: TableMapping, using: str) -> None:
    """A handler: the key's events keep arriving (and being parked) while it is replayed."""
    park_event(event.seq + 1)


def replay_with(handler: str) -> list:
    spec = MappingSpec("catalog_product", "catalog.Product", handler=handler)
    return deadletters.replay({"catalog_product": resolve(spec)}, key="7")


def test_letters_parked_while_the_key_is_replayed_are_replayed_too():
    park_event(1)

    outcomes = replay_with("tests.cdc.test_deadletters_command.park_newer_until_3")

    assert [(o.key, o.events, o.replayed) for o in outcomes] == [("7", 3, True)]
    assert deadletters.pending(key="7") == []  # the key flows again


def test_a_key_whose_letters_keep_arriving_is_reported_still_parked():
    park_event(1)

    [outcome] = replay_with("tests.cdc.test_deadletters_command.park_newer_forever")

    assert not outcome.replayed
    assert "still parked" in (outcome.error or "")
    assert len(deadletters.pending(key="7")) == 1
