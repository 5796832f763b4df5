"""Finding apps on disk: the only IO of the compile pipeline.

`flowdesk validate` accepts a folder of apps, one app, a pack, or single
files; this module turns those paths into `AppSource`s (a name -> text map per
app) so that compiling stays a pure function of text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import Diagnostic
from .loader import encoding_diagnostic, iter_yaml_files

__all__ = ["MANIFEST_FILES", "TESTS_FOLDER", "AppSource", "discover", "read_app", "read_tests"]

MANIFEST_FILES = ("app.yaml", "pack.yaml")
TESTS_FOLDER = "tests"
EXCLUDED_FOLDERS = (TESTS_FOLDER,)  # scenario tests live beside the model, not in it


@dataclass
class AppSource:
    """The texts of one app (or pack, or loose files), keyed by display path."""

    root: Path | None
    texts: dict[str, str] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    only: set[str] | None = None  # report diagnostics for these files only

    @property
    def label(self) -> str:
        return str(self.root) if self.root else ", ".join(self.texts)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _read(path: Path, source: AppSource) -> None:
    name = _display(path)
    try:
        source.texts[name] = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        source.diagnostics.append(encoding_diagnostic(name, error))
    except OSError as error:
        source.diagnostics.append(
            Diagnostic(name, 1, 1, "file-unreadable", f"cannot read file: {error.strerror}")
        )


def read_app(root: Path) -> AppSource:
    """Every YAML file of an app folder, manifests first, then in path order."""
    source = AppSource(root)
    files = iter_yaml_files(root, exclude=EXCLUDED_FOLDERS)
    files.sort(key=lambda p: (p.parent != root or p.name not in MANIFEST_FILES, str(p)))
    for path in files:
        _read(path, source)
    return source


def read_tests(root: Path) -> AppSource:
    """The app's scenario files (`tests/*.yaml`, in path order), compiled together with
    the app by `flowdesk test`; never part of what is deployed."""
    source = AppSource(root)
    folder = root / TESTS_FOLDER
    for path in iter_yaml_files(folder) if folder.is_dir() else []:
        _read(path, source)
    return source


def _app_root(path: Path) -> Path | None:
    for folder in [path.parent, *path.parent.parents]:
        if any((folder / name).is_file() for name in MANIFEST_FILES):
            return folder
    return None


def discover(paths: list[Path]) -> list[AppSource]:
    """Apps named by `paths`: app folders, folders of apps, or files inside an app."""
    found: dict[Path, AppSource] = {}
    loose = AppSource(None)
    for path in paths:
        if path.is_dir():
            _discover_folder(path, found, loose)
        elif path.is_file():
            root = _app_root(path.resolve())
            if root is None:
                _read(path, loose)
                continue
            app = found.setdefault(root, read_app(root))
            if app.only is not None or not any(p.is_dir() and p.resolve() == root for p in paths):
                app.only = (app.only or set()) | {_display(path)}
        else:
            loose.diagnostics.append(
                Diagnostic(str(path), 1, 1, "path-not-found", "no such file or folder")
            )
    return [*found.values(), *([loose] if loose.texts or loose.diagnostics else [])]


def _discover_folder(folder: Path, found: dict[Path, AppSource], loose: AppSource) -> None:
    root = folder.resolve()
    if any((root / name).is_file() for name in MANIFEST_FILES):
        found[root] = read_app(root)
        return
    children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    apps = [c for c in children if any((c / n).is_file() for n in MANIFEST_FILES)]
    for child in apps:
        found[child] = read_app(child)
    if not apps:
        loose.diagnostics.append(
            Diagnostic(
                _display(folder),
                1,
                1,
                "no-app-found",
                "no app here: an app folder has an `app.yaml` (a pack a `pack.yaml`)",
                "",
                "run `flowdesk new app NAME` to start one",
            )
        )
