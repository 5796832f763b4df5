"""Static checking: inferred types, issue codes, positions, hints and member paths."""

from __future__ import annotations

import pytest

from flowdesk.expressions import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    NULL,
    STRING,
    TIMESTAMP,
    UINT,
    CelType,
    EnumType,
    ExpressionError,
    ExpressionIssue,
    ListType,
    MapType,
    ObjectType,
    compile_expression,
)

PRIORITY = EnumType("priority", ("p1", "p2", "p3", "p4"))
STATUS = EnumType("status", ("open", "closed"))
CUSTOMER = ObjectType("customer", {"name": STRING, "region": STRING})
TICKET = ObjectType(
    "ticket",
    {
        "priority": PRIORITY,
        "status": STATUS,
        "count": INT,
        "amount": DOUBLE,
        "title": STRING,
        "tags": ListType(STRING),
        "customer": CUSTOMER,
        "attrs": MapType(STRING, INT),
        "payload": DYN,
        "created": TIMESTAMP,
        "priorities": ListType(PRIORITY),
    },
)
USER = ObjectType("user", {"region": STRING, "roles": ListType(STRING)})
SCOPE: dict[str, CelType] = {
    "record": TICKET,
    "user": USER,
    "now": TIMESTAMP,
    "limit": INT,
    "rate": DOUBLE,
    "flag": BOOL,
    "blob": BYTES,
    "u": UINT,
    "wait": DURATION,
    "json": DYN,
}


def issues_of(source: str, expect: CelType | None = BOOL) -> tuple[ExpressionIssue, ...]:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source, SCOPE, expect=expect)
    return caught.value.issues


def only_issue(source: str, expect: CelType | None = BOOL) -> ExpressionIssue:
    issues = issues_of(source, expect)
    assert len(issues) == 1, issues
    return issues[0]


def type_of(source: str) -> CelType:
    return compile_expression(source, SCOPE).result_type


TYPES = [
    ("1", INT),
    ("1u", UINT),
    ("1.5", DOUBLE),
    ('"a"', STRING),
    ('b"a"', BYTES),
    ("true", BOOL),
    ("null", NULL),
    ("record.count + 1", INT),
    ("record.amount * 2.0", DOUBLE),
    ("u * 2u", UINT),
    ('record.title + "!"', STRING),
    ('record.priority + "!"', STRING),
    ("record.tags + ['x']", ListType(STRING)),
    ("[]", ListType(DYN)),
    ("[1, null]", ListType(INT)),
    ("[record.priority, 'p1']", ListType(STRING)),
    ("{}", MapType(DYN, DYN)),
    ('{"a": 1}', MapType(STRING, INT)),
    ("now - record.created", DURATION),
    ("now - wait", TIMESTAMP),
    ("wait + now", TIMESTAMP),
    ("wait + wait", DURATION),
    ("record.priority", PRIORITY),
    ("flag ? record.priority : record.priority", PRIORITY),
    ("flag ? record.priority : 'x'", STRING),
    ("flag ? 1 : null", INT),
    ("record.customer", CUSTOMER),
    ("record.customer.name", STRING),
    ('record.attrs["a"]', INT),
    ("record.attrs.a", INT),
    ("record.tags[0]", STRING),
    ("record.payload.anything[3].deeper", DYN),
    ("json + 1", DYN),
    ("json + json", DYN),
    ("json.x", DYN),
    ("dyn(1)", DYN),
    ("size(record.tags)", INT),
    ("record.tags.size()", INT),
    ("record.tags.map(t, size(t))", ListType(INT)),
    ("record.tags.filter(t, t != '')", ListType(STRING)),
    ("record.attrs.filter(k, k != '')", ListType(STRING)),
    ("record.tags.all(t, t != '')", BOOL),
    ("record.tags.exists_one(t, t == 'x')", BOOL),
    ("has(record.title)", BOOL),
    ("sum([1, 2])", INT),
    ("sum([1.0])", DOUBLE),
    ("sum(json)", DYN),
    ("max(record.tags)", STRING),
    ("min([now])", TIMESTAMP),
    ("int(json)", INT),
    ("now.getHours('Europe/Paris')", INT),
    ("wait.getMinutes()", INT),
    ("json.getHours()", INT),
    ("timestamp('2024-01-01T00:00:00Z')", TIMESTAMP),
    ("record.priority in ['p1', 'p2']", BOOL),
    ("'a' in record.attrs", BOOL),
    ("record.count == null", BOOL),
    ("null != record.customer", BOOL),
    ("record.customer == record.customer", BOOL),
    ("record.priority == record.priority", BOOL),
    ("record.priority == record.title", BOOL),
    ("u < 3u", BOOL),
    ("blob < b'z'", BOOL),
    ("record.tags == ['a']", BOOL),
]


@pytest.mark.parametrize(("source", "expected"), TYPES, ids=[t[0] for t in TYPES])
def test_infers_result_types(source: str, expected: CelType) -> None:
    assert type_of(source) == expected


def test_names_are_member_paths_through_records() -> None:
    compiled = compile_expression(
        'record.priority == "p1" && user.region == record.customer.region'
        " && record.tags.exists(t, t == user.roles[0])"
        " && record.attrs.color > 1 && json.a.b == 1 && has(record.title) && limit > 0",
        SCOPE,
        expect=BOOL,
    )
    assert compiled.names == frozenset(
        {
            ("record", "priority"),
            ("user", "region"),
            ("record", "customer", "region"),
            ("record", "tags"),
            ("user", "roles"),
            ("record", "attrs"),
            ("json",),
            ("record", "title"),
            ("limit",),
        }
    )


def test_comprehension_variables_are_not_names() -> None:
    compiled = compile_expression("record.tags.map(limit, limit + 'x')", SCOPE)
    assert compiled.names == frozenset({("record", "tags")})
    assert compiled.result_type == ListType(STRING)


def test_unknown_field_with_did_you_mean() -> None:
    issue = only_issue('record.priorty == "p1"')
    assert issue == ExpressionIssue(
        "cel-unknown-field",
        "unknown field `priorty` of ticket",
        "did you mean `priority`?",
        1,
        8,
        7,
    )


def test_unknown_nested_field_names_the_nested_record() -> None:
    issue = only_issue("record.customer.nmae == 'x'")
    assert issue.code == "cel-unknown-field"
    assert issue.message == "unknown field `nmae` of customer"
    assert issue.hint == "did you mean `name`?"
    assert (issue.line, issue.column) == (1, 17)


def test_field_of_a_scalar_hints_at_method_call() -> None:
    issue = only_issue("record.title.size > 1")
    assert issue.code == "cel-unknown-field"
    assert issue.message == "unknown field `size` of string"
    assert issue.hint == "did you mean `size()`?"


def test_unknown_name_with_did_you_mean() -> None:
    issue = only_issue("recrod.count > 1")
    assert (issue.code, issue.message, issue.hint) == (
        "cel-unknown-name",
        "unknown name `recrod`",
        "did you mean `record`?",
    )
    assert (issue.line, issue.column, issue.offset) == (1, 1, 0)


def test_unknown_name_without_close_match_has_no_hint() -> None:
    issue = only_issue("zzz > 1")
    assert issue.code == "cel-unknown-name"
    assert issue.hint is None


def test_comprehension_variable_is_suggested_inside_its_body() -> None:
    issue = only_issue("record.tags.exists(tag, tga == 'x')")
    assert issue.message == "unknown name `tga`"
    assert issue.hint == "did you mean `tag`?"
    assert issue.column == 25


def test_comprehension_variable_is_out_of_scope_after_its_body() -> None:
    issue = only_issue("record.tags.exists(tag, tag == 'x') && tag == 'y'")
    assert issue.code == "cel-unknown-name"
    assert issue.column == 40


def test_enum_literal_outside_values() -> None:
    issue = only_issue('record.priority == "p9"')
    assert issue.code == "cel-unknown-enum-value"
    assert issue.message == "`p9` is not a value of priority (p1, p2, p3, p4)"
    assert (issue.line, issue.column, issue.offset) == (1, 20, 19)


def test_enum_literal_gets_nearest_value_hint() -> None:
    issue = only_issue('record.status != "closd"')
    assert issue.message == "`closd` is not a value of status (open, closed)"
    assert issue.hint == "did you mean `closed`?"
    assert only_issue('"P2" == record.priority').hint == "did you mean `p2`?"


def test_enum_literals_are_checked_in_membership_and_ordering() -> None:
    issues = issues_of('record.priority in ["p1", "p9", "P3"] || "opn" in [record.status]')
    assert [(i.code, i.column, i.hint) for i in issues] == [
        ("cel-unknown-enum-value", 27, None),
        ("cel-unknown-enum-value", 33, "did you mean `p3`?"),
        ("cel-unknown-enum-value", 42, "did you mean `open`?"),
    ]
    assert only_issue("'p7' in record.priorities").code == "cel-unknown-enum-value"
    assert only_issue("record.priority < 'p0'").code == "cel-unknown-enum-value"


def test_enum_accepts_its_values_and_plain_strings() -> None:
    compile_expression('record.priority == "p4" && record.priority != user.region', SCOPE)
    compile_expression('record.priority in ["p1", "p2"]', SCOPE)


def test_two_different_enums_do_not_compare() -> None:
    issue = only_issue("record.priority == record.status")
    assert issue.code == "cel-type-mismatch"
    assert issue.message == "cannot compare priority with status"


def test_int_times_double_is_a_mismatch_with_conversion_hint() -> None:
    issue = only_issue("record.count * 1.5", expect=None)
    assert issue.code == "cel-type-mismatch"
    assert issue.message == "cannot apply `*` to int and double"
    assert issue.hint == "convert with double(...)"
    assert (issue.line, issue.column, issue.offset) == (1, 14, 13)


def test_int_compared_with_double_is_a_mismatch_like_at_runtime() -> None:
    issue = only_issue("record.count < 2.5")
    assert issue.message == "cannot compare int with double"
    assert issue.hint == "convert with double(...)"
    assert only_issue("record.count == 2.0").code == "cel-type-mismatch"


def test_int_compared_with_string_is_a_mismatch() -> None:
    issue = only_issue('record.count == "5"')
    assert issue.code == "cel-type-mismatch"
    assert issue.message == "cannot compare int with string"
    assert issue.column == 14


MISMATCHES = [
    ("flag && 1", "cannot apply `&&` to bool and int"),
    ("!record.count", "cannot apply `!` to int"),
    ("-record.title == ''", "cannot apply `-` to string"),
    ("-u == u", "cannot apply `-` to uint"),
    ("record.amount % 2.0 > 1.0", "cannot apply `%` to double and double"),
    ("limit + u > 0", "cannot apply `+` to int and uint"),
    ("record.title + 1 == ''", "cannot apply `+` to string and int"),
    ("now + now == now", "cannot apply `+` to timestamp and timestamp"),
    ("wait - now == now", "cannot apply `-` to duration and timestamp"),
    ("record.tags + [1] == []", "cannot apply `+` to list<string> and list<int>"),
    ("record.tags + null == []", "cannot apply `+` to list<string> and null"),
    ("record.count < null", "cannot compare int with null"),
    ("record.customer < record.customer", "cannot compare customer with customer"),
    ("record.tags == [1]", "cannot compare list<string> with list<int>"),
    ("1 in record.tags", "cannot look for int in list<string>"),
    ("record.count in record.count", "cannot apply `in` to int and int"),
    ("record.title[0] == 'a'", "cannot index string"),
    ('record["count"] == 1', "cannot index ticket"),
    ("record.tags['a'] == 'b'", "list index must be int, got string"),
    ("record.attrs[1] == 1", "map key must be string, got int"),
    ("record.count ? true : false", "the condition of `?:` must be bool, got int"),
    ("(flag ? 1 : 'a') == 1", "the branches of `?:` have different types: int and string"),
    ("[1, 'a'] == []", "list elements must have one type, got int and string"),
    ("{1.5: 1} == {}", "map keys must be int, uint, bool or string, got double"),
    ("{'a': 1, 'b': 'x'} == {}", "map values must have one type, got int and string"),
    ("record.tags.all(t, size(t))", "the condition of `all` must be bool, got int"),
    ("record.count.exists(t, true)", "`exists` needs a list or map, got int"),
]


@pytest.mark.parametrize(("source", "message"), MISMATCHES, ids=[m[0] for m in MISMATCHES])
def test_type_mismatches(source: str, message: str) -> None:
    issue = only_issue(source)
    assert issue.code == "cel-type-mismatch"
    assert issue.message == message


def test_unknown_function_with_nearest_name() -> None:
    issue = only_issue("record.title.startWith('a')")
    assert issue.code == "cel-unknown-function"
    assert issue.message == "unknown function `startWith`"
    assert issue.hint == "did you mean `startsWith`?"
    assert (issue.line, issue.column) == (1, 14)


def test_unknown_function_with_familiar_alias() -> None:
    assert only_issue("length(record.tags) > 1").hint == "use `size(...)`"
    assert only_issue("now() > record.created").hint == "use the `now` variable"


def test_lower_ascii_is_not_offered_because_cel_python_lacks_it() -> None:
    assert only_issue("record.title.lowerAscii() == 'x'").code == "cel-unknown-function"


def test_bad_arguments_lists_the_accepted_overloads() -> None:
    issue = only_issue("record.title.startsWith(1)")
    assert issue.code == "cel-bad-arguments"
    assert issue.message == "no matching overload for `string.startsWith(int)`"
    assert issue.hint == "expected `string.startsWith(string)`"
    assert issue.column == 14


BAD_ARGUMENTS = [
    ("size(record.count) > 1", "no matching overload for `size(int)`"),
    ("size() > 1", "no matching overload for `size()`"),
    ("sum(record.tags) > 1", "no matching overload for `sum(list<string>)`"),
    ("max([true]) ", "no matching overload for `max(list<bool>)`"),
    ("int(null) > 1", "no matching overload for `int(null)`"),
    ("now.getDayOfWeek(1) > 1", "no matching overload for `timestamp.getDayOfWeek(int)`"),
    ("wait.getDayOfWeek() > 1", "no matching overload for `duration.getDayOfWeek()`"),
    ("record.tags.contains('x')", "no matching overload for `list<string>.contains(string)`"),
    ("record.count.int() > 1", "`int` is not a method"),
    ("startsWith(record.title, 'a')", "`startsWith` is a method"),
    ("record.tags.all(t)", "`all` needs a variable name and an expression"),
    ("record.tags.exists(1, true)", "`exists` needs a variable name and an expression"),
    ("all(record.tags, true)", "`all` must be called on a list"),
    ("has(record)", "`has` needs one field selection"),
]


@pytest.mark.parametrize(("source", "message"), BAD_ARGUMENTS, ids=[b[0] for b in BAD_ARGUMENTS])
def test_bad_arguments(source: str, message: str) -> None:
    issue = only_issue(source)
    assert issue.code == "cel-bad-arguments"
    assert issue.message == message


def test_result_must_match_expectation() -> None:
    issue = only_issue("  record.count + 1")
    assert issue == ExpressionIssue(
        "cel-not-boolean", "expression must be bool, but it is int", None, 1, 3, 2
    )
    other = only_issue("record.count", expect=STRING)
    assert other.message == "expression must be string, but it is int"


def test_dyn_result_is_accepted_for_any_expectation() -> None:
    assert compile_expression("json.flag", SCOPE, expect=BOOL).result_type == DYN
    assert compile_expression("json", SCOPE, expect=INT).result_type == DYN
    assert compile_expression("record.priority", SCOPE, expect=STRING).result_type == PRIORITY


def test_all_issues_are_collected_in_source_order() -> None:
    issues = issues_of('recrod.count > 1 && record.priorty == "p1" && record.count * 1.5 > 2.0')
    assert [(i.code, i.column) for i in issues] == [
        ("cel-unknown-name", 1),
        ("cel-unknown-field", 28),
        ("cel-type-mismatch", 60),
    ]


def test_an_erroneous_subexpression_does_not_cascade() -> None:
    # `recrod.count` is dyn after its error, so the comparison and `&&` stay quiet.
    assert len(issues_of("recrod.count + 1 > 2.0 && flag")) == 1


def test_positions_in_multi_line_expressions() -> None:
    source = 'record.priority == "p1"\n  && record.cuont > 1\n  && record.amount * 2 > 1.0'
    issues = issues_of(source)
    assert [(i.code, i.line, i.column, i.offset) for i in issues] == [
        ("cel-unknown-field", 2, 13, 36),
        ("cel-type-mismatch", 3, 20, 65),
    ]
    for issue in issues:
        line_text = source.splitlines()[issue.line - 1]
        assert source[issue.offset] == line_text[issue.column - 1]


def test_positions_ignore_comments_between_operands() -> None:
    issue = only_issue("record.count // the count\n  * 1.5 > 1.0")
    assert (issue.line, issue.column) == (2, 3)


def test_scope_is_not_mutated_and_issue_renders_readably() -> None:
    scope = dict(SCOPE)
    with pytest.raises(ExpressionError) as caught:
        compile_expression("recrod", scope)
    assert scope == SCOPE
    assert str(caught.value) == (
        "1:1: cel-unknown-name: unknown name `recrod` (did you mean `record`?)"
    )
