"""CEL conditions of Flowdesk models: parsing, static type checking and evaluation.

Business analysts write conditions in YAML models in CEL (Common Expression Language),
e.g. ``record.priority == "p1" && user.region in ["EU", "US"]``. This package is the one
place that understands them:

* :func:`compile_expression` parses the text, type-checks it against a scope of
  :class:`CelType` values (declared by the model linker) and reports *every* problem as
  an :class:`ExpressionIssue` with a stable code, a position and, where possible, a
  "did you mean" hint;
* :meth:`CompiledExpression.evaluate` runs it on plain Python values;
* :attr:`CompiledExpression.ast` and :attr:`CompiledExpression.names` expose a small
  syntax tree and the member paths read, for the linker and the SQL translator.

Evaluation has two engines behind this one API, chosen per expression when it is
compiled (:mod:`flowdesk.expressions.routing`): the Rust-backed
``common-expression-language`` package, about ten times faster, wherever it was shown to
agree with the reference, the pure-Python ``cel-python`` interpreter (``celpy``) with
Flowdesk's corrections. cel-python also evaluates whenever the Rust engine fails, so
results and errors never depend on the engine; a differential test holds the two
together. Nothing engine-specific is exposed, and the checker follows the CEL
specification where cel-python is more lenient (``x.int()``, ``list.contains(x)`` are
rejected).

This package is a leaf: it must not import anything else from ``flowdesk``.
"""

from __future__ import annotations

from flowdesk.expressions.ast import Node
from flowdesk.expressions.compiler import CompiledExpression, compile_expression
from flowdesk.expressions.errors import ExpressionError, ExpressionEvalError, ExpressionIssue
from flowdesk.expressions.types import (
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
    ListType,
    MapType,
    ObjectType,
    PrimitiveType,
    is_assignable,
)

__all__ = [
    "BOOL",
    "BYTES",
    "DOUBLE",
    "DURATION",
    "DYN",
    "INT",
    "NULL",
    "STRING",
    "TIMESTAMP",
    "UINT",
    "CelType",
    "CompiledExpression",
    "EnumType",
    "ExpressionError",
    "ExpressionEvalError",
    "ExpressionIssue",
    "ListType",
    "MapType",
    "Node",
    "ObjectType",
    "PrimitiveType",
    "compile_expression",
    "is_assignable",
]
