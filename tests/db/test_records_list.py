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


# --------------------------------------------------------------------------- `where` and count


def test_where_limits_reads_and_count(filled: tuple) -> None:
    from flowdesk.store.errors import NotFound

    store, made = filled
    table = store.table("item")
    red = {item["id"] for item in made if item["color"] == "red"}
    where = table.c.color == "red"
    pages = all_pages(store, where=where, limit=4)
    assert {i for page in pages for i in page} == red and all(len(p) == 4 for p in pages[:-1])
    assert all_pages(store, where=where, limit=4) == pages  # the cached statement again
    assert store.count("item") == len(made)
    assert store.count("item", where=where) == len(red)
    wheels = {item["id"] for item in made if item["notes"] == "spare wheel"}
    assert store.count("item", where=where, search="wheel") == len(red & wheels)
    assert store.count("item", filter='record.notes == "spare wheel"', where=where) == len(
        red & wheels
    )
    other = next(item for item in made if item["color"] != "red")
    with pytest.raises(NotFound):
        store.get("item", other["id"], where=where)
    with pytest.raises(NotFound):
        store.timeline("item", other["id"], where=where)
    mine = next(iter(red))
    assert store.get("item", mine, where=where, fields=["name"])["id"] == mine
    assert [e.action for e in store.timeline("item", mine, where=where)] == ["create"]


def test_where_limits_writes(filled: tuple) -> None:
    from flowdesk.store.errors import NotFound

    store, made = filled
    who = actor(None)
    where = store.table("item").c.color == "red"
    other = next(item for item in made if item["color"] != "red")
    version = other["row_version"]
    with pytest.raises(NotFound):  # outside `where`: not found, whatever the version says
        store.update("item", other["id"], {"count": 5}, expected_version=9, actor=who, where=where)
    with pytest.raises(NotFound):
        store.set_state("item", other["id"], "x", expected_version=version, actor=who, where=where)
    with pytest.raises(NotFound):
        store.delete("item", other["id"], actor=who, where=where)
    with pytest.raises(NotFound):
        store.delete("item", other["id"], actor=who, where=where, hard=True)
    store.delete("item", other["id"], actor=who)
    with pytest.raises(NotFound):
        store.restore("item", other["id"], actor=who, where=where)
    after = store.get("item", other["id"], include_deleted=True)
    assert after["count"] == other["count"] and after["row_version"] == version + 1
    red = next(item for item in made if item["color"] == "red")
    changed = store.update(
        "item", red["id"], {"count": 5}, expected_version=red["row_version"], actor=who, where=where
    )
    assert changed["count"] == 5
    store.delete("item", red["id"], actor=who, where=where)
    assert (
        store.count("item", where=where, include_deleted=True)
        == store.count("item", where=where) + 1
    )


def test_the_update_itself_checks_where_again(filled: tuple) -> None:
    """A record that leaves `where` between the read and the write (a referred record
    or the org chart changed) is not written: the UPDATE carries `where` too."""
    from flowdesk.store.errors import NotFound

    store, made = filled
    table = store.table("item")
    red = next(item for item in made if item["color"] == "red")

    def meanwhile(conn: sa.Connection, *args: object) -> None:
        conn.execute(sa.update(table).where(table.c.id == red["id"]).values(color="blue"))

    store._check_unique = meanwhile  # type: ignore[method-assign]
    with pytest.raises(NotFound):
        store.update(
            "item",
            red["id"],
            {"count": 7},
            expected_version=red["row_version"],
            actor=actor(None),
            where=table.c.color == "red",
        )
    assert store.get("item", red["id"])["count"] == red["count"]  # rolled back


def test_resolver_follows_references_like_list_filters(filled: tuple) -> None:
    from flowdesk.store.filters import to_sql

    store, made = filled
    parent = made[0]
    child = store.create("item", {"name": "Child", "parent_item": parent["id"]}, actor=actor(None))
    text = f'record.parent_item.color == "{parent["color"]}"'
    clause = to_sql(store.compile_filter("item", text), store.resolver("item"), {})
    assert store.resolver("item") is store.resolver("item")
    assert [i["id"] for i in store.list("item", where=clause).items] == [child["id"]]
