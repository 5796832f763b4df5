"""Listing records: CEL filters, multi-key sort, keyset pages, field selection and
full-text search, on SQLite and PostgreSQL."""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa
from test_records_support import actor, add_user, lab_app, shipped_app, store_for

from flowdesk.store.errors import InvalidCursor, InvalidFilter, InvalidQuery, UnsupportedFilterError
from flowdesk.store.records import RecordStore


@pytest.fixture
def filled(engine: sa.Engine) -> tuple[RecordStore, list[dict]]:
    store = store_for(engine, lab_app())
    who = actor(add_user(engine, "alice"))
    rng = random.Random(7)
    made = []
    for index in range(37):
        values = {
            "name": f"Item {'abcdefghij'[index % 10]}",
            "count": rng.choice([1, 2, 3, None]),  # many equal sort keys, some nulls
            "color": rng.choice(["red", "green", "blue"]),
            "notes": "spare wheel" if index % 5 == 0 else "other stuff",
        }
        made.append(store.create("item", values, actor=who))
    return store, made


def all_pages(store: RecordStore, **options: object) -> list[list[int]]:
    pages, cursor = [], None
    while True:
        page = store.list("item", cursor=cursor, **options)  # type: ignore[arg-type]
        pages.append([item["id"] for item in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return pages


def sort_key(item: dict, keys: list[str]) -> tuple:
    parts = []
    for key in keys:
        name = key.lstrip("-")
        value = item[name]
        rank = (value is None, value if value is not None else 0)  # NULLs greatest
        parts.append(_Reverse(rank) if key.startswith("-") else rank)
    return tuple(parts)


class _Reverse:
    def __init__(self, value: tuple) -> None:
        self.value = value

    def __lt__(self, other: _Reverse) -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reverse) and other.value == self.value


@pytest.mark.parametrize("sort", [["-count", "name"], ["count", "-id"], ["color", "-count"]])
def test_pages_have_no_gaps_or_duplicates(filled: tuple, sort: list[str]) -> None:
    store, made = filled
    pages = all_pages(store, sort=sort, limit=5)
    ids = [i for page in pages for i in page]
    assert len(ids) == len(set(ids)) == len(made)
    tiebreak = "-id" if sort[0].startswith("-") else "id"
    keys = sort if "id" in (k.lstrip("-") for k in sort) else [*sort, tiebreak]
    expected = sorted(made, key=lambda item: sort_key(item, keys))
    assert ids == [item["id"] for item in expected]
    assert all(len(page) == 5 for page in pages[:-1])


def test_pages_stay_stable_under_inserts(filled: tuple, engine: sa.Engine) -> None:
    store, made = filled
    first = store.list("item", sort=["-count", "name"], limit=10)
    store.create("item", {"name": "Late", "count": 9}, actor=actor(None))  # sorts first
    rest = all_pages(store, sort=["-count", "name"], limit=10)
    following = store.list("item", sort=["-count", "name"], limit=10, cursor=first.next_cursor)
    seen = [i["id"] for i in first.items] + [i["id"] for i in following.items]
    assert len(set(seen)) == 20 and sum(map(len, rest)) == len(made) + 1


def test_filter_sort_and_fields(filled: tuple) -> None:
    store, made = filled
    page = store.list(
        "item",
        filter='record.color == "red" && record.count != null',
        sort=["count", "id"],
        fields=["name", "count"],
        limit=100,
    )
    expected = [m for m in made if m["color"] == "red" and m["count"] is not None]
    assert [i["id"] for i in page.items] == [
        m["id"] for m in sorted(expected, key=lambda m: (m["count"], m["id"]))
    ]
    assert set(page.items[0]) == {"id", "row_version", "name", "count"}
    page = store.list(
        "item", filter='record.name.startsWith("Item a") || record.count in [2]', limit=100
    )
    assert {i["id"] for i in page.items} == {
        m["id"] for m in made if m["name"] == "Item a" or m["count"] == 2
    }


def test_filter_errors_name_the_problem(filled: tuple) -> None:
    store, _made = filled
    with pytest.raises(InvalidFilter, match="colour"):
        store.list("item", filter='record.colour == "red"')
    with pytest.raises(UnsupportedFilterError) as caught:
        store.list("item", filter="record.parts.exists(p, p.qty > 1)")
    assert "exists" in str(caught.value) or "parts" in str(caught.value)
    with pytest.raises(InvalidQuery, match="cannot sort item by `nope`"):
        store.list("item", sort=["nope"])
    with pytest.raises(InvalidCursor):
        store.list("item", cursor="garbage!")
    cursor = store.list("item", sort=["name"], limit=1).next_cursor
    with pytest.raises(InvalidCursor, match="order"):
        store.list("item", sort=["-name"], cursor=cursor)


def test_full_text_search(filled: tuple) -> None:
    store, made = filled
    found = store.list("item", search="wheel", limit=100)
    assert {i["id"] for i in found.items} == {m["id"] for m in made if "wheel" in m["notes"]}
    assert store.list("item", search="spare WHEEL", limit=100).items == found.items
    assert store.list("item", search="wheel nothing", limit=100).items == []
    assert store.list("item", search='"quoted" OR *', limit=100).items == []  # no query syntax
    first = found.items[0]
    store.update("item", first["id"], {"notes": "flat tyre"}, expected_version=1, actor=actor(None))
    assert first["id"] not in {i["id"] for i in store.list("item", search="wheel").items}
    assert [i["id"] for i in store.list("item", search="tyre").items] == [first["id"]]
    store.delete("item", first["id"], actor=actor(None), hard=True)
    assert store.list("item", search="tyre").items == []


def test_filter_through_a_reference_and_search_of_a_shipped_app(engine: sa.Engine) -> None:
    store = store_for(engine, shipped_app("service_desk"))
    who = actor(add_user(engine, "agent"), "agent", "agent")
    manager = add_user(engine, "boss")
    vip = store.create(
        "customer",
        {
            "name": "Big",
            "code": "C000001",
            "region": "east",
            "level": "vip",
            "account_manager": manager,
        },
        actor=who,
    )
    tickets = [
        store.create("ticket", {"title": f"Printer jam {n}", "customer": vip["id"]}, actor=who)
        for n in range(3)
    ] + [store.create("ticket", {"title": "Laptop slow", "contact_email": "x@y.cn"}, actor=who)]
    found = store.list("ticket", filter='record.customer.level == "vip"', sort=["number"])
    assert [t["id"] for t in found.items] == [t["id"] for t in tickets[:3]]
    assert [t["id"] for t in store.list("ticket", search="laptop").items] == [tickets[3]["id"]]
    mine = store.list("ticket", filter="record.created_by.id == user.id", actor=who)
    assert len(mine.items) == 4
