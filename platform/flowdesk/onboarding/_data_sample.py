"""A sample ticket history for the service desk app: for the tests, the benchmark and docs.

`write_ticket_history` writes a CSV as a legacy Chinese helpdesk would export it
(Chinese headers and priorities, `2024/03/01 09:30` local times, customer
codes), with a chosen share of bad rows (one problem each, of five kinds) and of
duplicates (a later copy of an earlier good row), and returns which rows are
which, so a test can demand that exactly those are reported. Deterministic per
seed.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TICKET_MAPPING", "Sample", "write_ticket_history"]

TICKET_MAPPING = """\
entity: ticket
columns:
  工单号: number
  标题: title
  描述: description
  优先级: {field: priority, values: {高: p2, 中: p3, 低: p4}}
  客户编号: {field: customer, lookup: code}
  渠道: {field: channel, values: {电话: phone, 邮件: email, 网页: web}}
  类别: {field: category, values: {硬件: hardware, 软件: software, 网络: network}}
  创建时间: {field: created_at, format: "%Y/%m/%d %H:%M"}
  状态: {field: state, values: {已关闭: closed, 处理中: in_progress, 新建: new}}
  解决方案: resolution
  解决时间: {field: resolved_at, format: "%Y/%m/%d %H:%M"}
defaults:
  sla_status: green
"""

HEADER = ["工单号", "标题", "描述", "优先级", "客户编号", "渠道", "类别", "创建时间", "状态",
          "解决方案", "解决时间"]
BAD_KINDS = ("bad-date", "bad-priority", "no-title", "unknown-customer", "short-title")


@dataclass
class Sample:
    """What was written: every data row number, and the bad and duplicate ones."""

    rows: int = 0
    bad: dict[int, str] = field(default_factory=dict)  # row -> kind of problem
    duplicates: dict[int, int] = field(default_factory=dict)  # row -> row it copies

    @property
    def rejected(self) -> set[int]:
        return set(self.bad) | set(self.duplicates)


def write_ticket_history(
    path: Path, rows: int, customers: list[str], *, bad_share: float = 0.01,
    duplicate_share: float = 0.005, seed: int = 8,
) -> Sample:  # fmt: skip
    """Write `rows` data rows to `path`; `customers` are existing customer codes."""
    rng = random.Random(seed)
    numbers = list(range(2, rows + 2))  # data rows are numbered from 2 (row 1: header)
    special = rng.sample(numbers[10:], int(rows * bad_share) + int(rows * duplicate_share))
    bad_rows = set(special[: int(rows * bad_share)])
    duplicate_rows = set(special[int(rows * bad_share):])
    sample = Sample(rows=rows)
    written: dict[int, list[str]] = {}
    start = dt.datetime(2023, 1, 1, 8, 0)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for row in numbers:
            if row in duplicate_rows:
                original = rng.choice([r for r in list(written)[-200:] if r not in bad_rows])
                sample.duplicates[row] = original
                writer.writerow(written[original])
                continue
            cells = _ticket(rng, row - 1, customers, start + dt.timedelta(minutes=37 * row))
            if row in bad_rows:
                kind = BAD_KINDS[len(sample.bad) % len(BAD_KINDS)]
                _spoil(cells, kind)
                sample.bad[row] = kind
            written[row] = cells
            writer.writerow(cells)
    return sample


def _ticket(rng: random.Random, n: int, customers: list[str], created: dt.datetime) -> list[str]:
    priority = rng.choice(["高", "中", "中", "低"])
    state = rng.choice(["已关闭", "已关闭", "处理中", "新建"])
    closed = state == "已关闭"
    resolved = created + dt.timedelta(hours=rng.randint(1, 72))
    problem = rng.choice(["VPN 无法连接", "打印机卡纸", "邮箱登录失败", "发票抬头错误"])
    return [
        f"TCK-{n:06d}",
        f"历史工单 {n}: {problem}",
        f"客户来电反映问题，已记录详细现象与复现步骤，编号 {n}。",
        priority,
        rng.choice(customers),
        rng.choice(["电话", "邮件", "网页"]),
        rng.choice(["硬件", "软件", "网络"]),
        created.strftime("%Y/%m/%d %H:%M"),
        state,
        "远程协助重新配置后恢复正常。" if closed else "",
        resolved.strftime("%Y/%m/%d %H:%M") if closed else "",
    ]


def _spoil(cells: list[str], kind: str) -> None:
    index = {"bad-date": 7, "bad-priority": 3, "no-title": 1, "unknown-customer": 4,
             "short-title": 1}[kind]
    cells[index] = {"bad-date": "2023/13/45 25:61", "bad-priority": "超高", "no-title": "",
                    "unknown-customer": "C999999", "short-title": "坏"}[kind]
