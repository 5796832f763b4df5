"""The Excel template for organisation imports (`flowdesk import org-template OUT.xlsx`).

The shipped `templates/org_import_template.xlsx` is this module's output, committed;
a test regenerates it and compares the cells, so the template and the importer never
drift apart. The workbook has an Instructions sheet, the three data sheets with one
example row each (delete them before importing), and drop-down lists (data
validation) on every cell that refers to another sheet: parent department, head,
department, position, manager and locale. A hidden `Lists` sheet holds the fixed lists
and, when the caller passes the deployed apps' roles, every known `app:role`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = ["HEADERS", "INSTRUCTIONS", "write_org_template"]

HEADERS: Mapping[str, tuple[str, ...]] = {
    "departments": ("Code", "Name", "Parent code", "Head employee ID", "Region"),
    "positions": ("Code", "Name"),
    "people": (
        "Employee ID", "Name", "Email", "Username", "Department code", "Position code",
        "Manager employee ID", "Roles", "Skills", "Region", "Calendar", "Phone", "Locale",
        "Timezone",
    ),
}  # fmt: skip
"""What a person sees; each normalises to the column of `_org_read.COLUMNS` at its index."""

_EXAMPLES = {
    "departments": ("HQ", "Head office", None, "E0001", "north"),
    "positions": ("ENG", "Engineer"),
    "people": ("E0001", "Wang Jing", "wang.jing@example.com", None, "HQ", "ENG", None,
               "*:admin", "network;hardware", "north", None, "+86 10 6500 1001", "zh",
               "Asia/Shanghai"),
}  # fmt: skip

INSTRUCTIONS = (
    "Flowdesk organisation import",
    "",
    "Fill in the Departments, Positions and People sheets, then run:",
    "    flowdesk import org FILE.xlsx --dry-run     (check and count, write nothing)",
    "    flowdesk import org FILE.xlsx               (write)",
    "Delete the example row of each sheet first. Keep the header row as it is.",
    "",
    "Departments: Code and Name are required. Parent code is the code of another "
    "department (leave empty for the top); Head employee ID is a person of the People sheet.",
    "Positions: Code and Name are required.",
    "People: Employee ID and Name are required. Email must be unique. Username defaults to "
    "the email (else the employee ID). Manager employee ID is another person of the sheet.",
    "Roles: app:role pairs separated by ;  e.g. service_desk:agent;procurement:employee  "
    "(*:admin = admin in every app). The roles must exist in the deployed apps.",
    "Skills: separated by ;   Locale: en or zh.   Timezone: e.g. Asia/Shanghai.",
    "Calendar: the name of a Calendar of a deployed app (e.g. cn_business).",
    "",
    "Every problem is reported with its sheet, row and column, and nothing is written "
    "until the whole file is right (or use --partial to write the good rows).",
    "Importing again synchronises: new rows are added, changed rows updated, and people "
    "(and departments) no longer in the file are deactivated, never deleted.",
)

_MAX_ROW = 20000
_LISTS = {"Locale": ("en", "zh")}


def write_org_template(path: Path, *, roles: Mapping[str, set[str]] | None = None) -> Path:
    """Write the template workbook to `path`; `roles` adds the known `app:role` list."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Instructions"
    for line in INSTRUCTIONS:
        sheet.append([line])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.column_dimensions["A"].width = 120
    for name in ("departments", "positions", "people"):
        data = workbook.create_sheet(name.capitalize())
        data.append(list(HEADERS[name]))
        data.append(list(_EXAMPLES[name]))
        for cell in data[1]:
            cell.font = Font(bold=True)
        data.freeze_panes = "A2"
        for index, header in enumerate(HEADERS[name]):
            data.column_dimensions[_letter(index)].width = max(14, len(header) + 4)
    _lists_sheet(workbook, roles)
    _validations(workbook)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


def _lists_sheet(workbook: object, roles: Mapping[str, set[str]] | None) -> None:
    lists = workbook.create_sheet("Lists")  # type: ignore[attr-defined]
    lists.append(["Locale", "Roles"])
    known = sorted(f"{app}:{role}" for app, names in (roles or {}).items() for role in names)
    for index in range(max(len(_LISTS["Locale"]), len(known))):
        locale = _LISTS["Locale"][index] if index < len(_LISTS["Locale"]) else None
        lists.append([locale, known[index] if index < len(known) else None])
    lists.sheet_state = "hidden"


def _validations(workbook: object) -> None:
    """Drop-downs on the cells that refer to another sheet's keys."""
    from openpyxl.worksheet.datavalidation import DataValidation

    departments = f"=Departments!$A$2:$A${_MAX_ROW}"
    people = f"=People!$A$2:$A${_MAX_ROW}"
    rules = {
        "Departments": {"Parent code": departments, "Head employee ID": people},
        "People": {"Department code": departments,
                   "Position code": f"=Positions!$A$2:$A${_MAX_ROW}",
                   "Manager employee ID": people, "Locale": "=Lists!$A$2:$A$3"},
    }  # fmt: skip
    for title, columns in rules.items():
        sheet = workbook[title]  # type: ignore[index]
        headers = list(HEADERS[title.lower()])
        for header, formula in columns.items():
            letter = _letter(headers.index(header))
            rule = DataValidation(type="list", formula1=formula, allow_blank=True,
                                  showErrorMessage=True, errorTitle="Unknown value",
                                  error=f"Choose a value from the list ({header}).")  # fmt: skip
            rule.add(f"{letter}2:{letter}{_MAX_ROW}")
            sheet.add_data_validation(rule)


def _letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(index + 1))

