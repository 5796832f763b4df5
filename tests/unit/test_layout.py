"""The source root `platform/` must never become a package: a top-level
`platform` would shadow the standard library module that SQLAlchemy, uuid,
pydantic and pytest import (see ARCHITECTURE.md)."""

from __future__ import annotations

import platform
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_platform_is_the_standard_library_module() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(platform.__file__).resolve().parent == stdlib
    assert callable(platform.python_version)


def test_platform_folder_is_not_a_package() -> None:
    assert (ROOT / "platform" / "flowdesk" / "__init__.py").is_file()
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_flowdesk_is_imported_from_the_source_root() -> None:
    import flowdesk

    assert Path(flowdesk.__file__).resolve().parent == ROOT / "platform" / "flowdesk"
