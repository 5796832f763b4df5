"""Demo organisation and records for the three shipped apps (`flowdesk serve --demo`).

Two steps, so the caller decides what happens in between (the server sets the demo
passwords with the identity library after the users exist):

* `seed_org(connection)` writes a small organisation: four departments (a head office
  with IT Support, Field Operations and Finance below it, each with a head), the
  four demo users of `DEMO_USERS` with their reporting lines (`manager_id`) and their
  roles per app. Approval routing by department head or reporting line finds people.
* `seed_records(engine, apps, users)` writes records into every shipped app it is
  given, through `RecordStore.create` acting as the demo users, so human numbers,
  defaults, computed fields, rules and the audit trail apply exactly as for records
  typed in by people. Records in later workflow states are moved there with
  `RecordStore.set_state` after their fields are filled in as the state requires.

Both are idempotent: `seed_org` only adds departments, users and roles that are
missing; `seed_records` leaves an app alone once it holds any record, and writes all
of one app's records in one transaction, so it never leaves an app half seeded.
The random choices come from a seeded generator: the same seed gives the same data.

Never for production: the users' passwords are their names (set by the caller).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select, update

from flowdesk.model.appmodel import AppModel
from flowdesk.store import platform_tables as pt
from flowdesk.store.records import Actor, RecordStore

__all__ = [
    "DEMO_DEPARTMENTS",
    "DEMO_USERS",
    "DemoDataError",
    "DemoDepartment",
    "DemoUser",
    "seed_org",
    "seed_records",
]

UTC = dt.UTC


# =========================================================================== organisation


@dataclass(frozen=True)
class DemoDepartment:
    """One department of the demo org chart; `parent` and `head` name other demo rows."""

    code: str
    name: str
    region: str
    parent: str | None = None
    head: str | None = None  # a DemoUser username


@dataclass(frozen=True)
class DemoUser:
    """One demo login. `roles` maps an app name (or `*`: every app) to its roles there."""

    username: str
    name: str
    email: str
    department: str | None  # a DemoDepartment code; None: an outside customer
    region: str
    locale: str
    roles: Mapping[str, tuple[str, ...]]
    manager: str | None = None  # a DemoUser username
    phone: str | None = None
    employee_id: str | None = None
    skills: tuple[str, ...] = ()


DEMO_DEPARTMENTS: tuple[DemoDepartment, ...] = (
    DemoDepartment("HQ", "Head office", "north", head="admin"),
    DemoDepartment("IT", "IT Support", "east", parent="HQ", head="supervisor"),
    DemoDepartment("FIELD", "Field Operations", "east", parent="HQ", head="supervisor"),
    DemoDepartment("FIN", "Finance", "north", parent="HQ", head="admin"),
)
"""Parents before children. The supervisor heads both IT Support and Field Operations."""

DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser(
        "admin", "王静 Wang Jing", "admin@example.com", "HQ", "north", "zh",
        # `admin` everywhere; the finance roles by name as well, because approvers given
        # as `{role: cfo}` are the holders of exactly that role (flowdesk.engine.parties).
        roles={"*": ("admin",), "procurement": ("finance_director", "cfo")},
        phone="+86 10 6500 1001", employee_id="E0001",
    ),
    DemoUser(
        "supervisor", "陈辉 Chen Hui", "supervisor@example.com", "IT", "east", "zh",
        roles={
            # service_manager (inherits supervisor): every ticket, not only the tickets
            # created in the supervisor's department tree (customers have no department).
            "service_desk": ("supervisor", "service_manager"),
            "field_service": ("supervisor", "dispatcher"),
            # line manager and department head of the agent; reviews IT purchases and
            # places orders.
            "procurement": ("approver", "it_reviewer", "purchaser"),
        },
        manager="admin", phone="+86 21 6100 2002", employee_id="E0102",
    ),
    DemoUser(
        "agent", "李雷 Li Lei", "agent@example.com", "IT", "east", "zh",
        roles={
            "service_desk": ("agent",),
            "field_service": ("technician",),
            "procurement": ("employee",),
        },
        manager="supervisor", phone="+86 138 0172 0107", employee_id="E0107",
        skills=("hardware", "network", "electrical", "hvac"),
    ),
    DemoUser(
        "customer", "Emma Clarke", "customer@example.com", None, "east", "en",
        roles={"service_desk": ("customer",)},
        phone="+86 21 5208 7710",
    ),
)  # fmt: skip
"""Managers before the people who report to them. Passwords are set by the caller."""


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


def seed_org(connection: Connection) -> dict[str, int]:
    """Add the demo departments, users and roles that are missing; return username -> id.

    Existing rows (matched by department code, username, and user/app/role) are left
    as they are, so a second run changes nothing. Users get no password: the caller
    sets them with the identity library. Runs on the caller's connection and
    transaction.
    """
    now = _now()
    departments, new_departments = _ensure_departments(connection, now)
    users = _ensure_users(connection, departments, now)
    _set_heads(connection, departments, new_departments, users, now)
    _ensure_roles(connection, users)
    return users


def _ensure_departments(
    connection: Connection, now: dt.datetime
) -> tuple[dict[str, int], set[str]]:
    table = pt.departments
    codes = [d.code for d in DEMO_DEPARTMENTS]
    found = dict(
        connection.execute(select(table.c.code, table.c.id).where(table.c.code.in_(codes))).all()
    )
    created: set[str] = set()
    for department in DEMO_DEPARTMENTS:
        if department.code in found:
            continue
        row = {
            "code": department.code,
            "name": department.name,
            "region": department.region,
            "parent_id": found.get(department.parent) if department.parent else None,
            "active": True,
            "created_at": now,
            "updated_at": now,
        }
        found[department.code] = connection.execute(
            table.insert().values(**row)
        ).inserted_primary_key[0]
        created.add(department.code)
    return {code: int(value) for code, value in found.items()}, created


def _ensure_users(
    connection: Connection, departments: Mapping[str, int], now: dt.datetime
) -> dict[str, int]:
    table = pt.users
    names = [u.username for u in DEMO_USERS]
    found = dict(
        connection.execute(
            select(table.c.username, table.c.id).where(table.c.username.in_(names))
        ).all()
    )
    for user in DEMO_USERS:
        if user.username in found:
            continue
        row = {
            "username": user.username,
            "name": user.name,
            "email": user.email,
            "phone": user.phone,
            "employee_id": user.employee_id,
            "department_id": departments.get(user.department) if user.department else None,
            "manager_id": found.get(user.manager) if user.manager else None,
            "region": user.region,
            "skills": list(user.skills) or None,
            "locale": user.locale,
            "timezone": "Asia/Shanghai",
            "active": True,
            "created_at": now,
            "updated_at": now,
        }
        found[user.username] = connection.execute(
            table.insert().values(**row)
        ).inserted_primary_key[0]
    return {name: int(value) for name, value in found.items()}


def _set_heads(
    connection: Connection,
    departments: Mapping[str, int],
    created: set[str],
    users: Mapping[str, int],
    now: dt.datetime,
) -> None:
    """Heads are set after the users exist, and only on departments made by this call."""
    for department in DEMO_DEPARTMENTS:
        if department.code not in created or department.head is None:
            continue
        connection.execute(
            update(pt.departments)
            .where(pt.departments.c.id == departments[department.code])
            .values(head_id=users[department.head], updated_at=now)
        )


def _ensure_roles(connection: Connection, users: Mapping[str, int]) -> None:
    table = pt.user_roles
    ids = list(users.values())
    query = select(table.c.user_id, table.c.app, table.c.role).where(table.c.user_id.in_(ids))
    held = {tuple(row) for row in connection.execute(query)}
    for user in DEMO_USERS:
        for app, roles in user.roles.items():
            for role in roles:
                key = (users[user.username], app, role)
                if key not in held:
                    connection.execute(table.insert().values(user_id=key[0], app=app, role=role))
                    held.add(key)


# =========================================================================== records


class DemoDataError(ValueError):
    """The demo records cannot be written as asked (a missing demo user, a bad scale)."""


@dataclass
class _Seeding:
    """One app being seeded: the store, the transaction, the demo actors and the counts."""

    store: RecordStore
    connection: Connection
    users: Mapping[str, int]
    rng: random.Random
    scale: int
    now: dt.datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def app(self) -> str:
        return self.store.app.name

    @property
    def local_today(self) -> dt.date:
        return self.now.astimezone(_zone(self.store.app)).date()

    def actor(self, username: str) -> Actor:
        user = next(u for u in DEMO_USERS if u.username == username)
        roles = (*user.roles.get("*", ()), *user.roles.get(self.app, ()))
        attributes = {"name": user.name, "email": user.email, "region": user.region}
        return Actor(self.users[username], username, roles=roles, locale=user.locale,
                     attributes=attributes)  # fmt: skip

    def create(self, entity: str, values: Mapping[str, Any], *, by: str) -> dict[str, Any]:
        record = self.store.create(entity, values, actor=self.actor(by), connection=self.connection)
        self.counts[entity] = self.counts.get(entity, 0) + 1
        return record

    def update(
        self, entity: str, record: Mapping[str, Any], changes: Mapping[str, Any], *, by: str
    ) -> dict[str, Any]:
        return self.store.update(
            entity, record["id"], changes, expected_version=record["row_version"],
            actor=self.actor(by), connection=self.connection,
        )  # fmt: skip

    def move(
        self, entity: str, record: Mapping[str, Any], state: str, *, by: str,
        comment: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Put a record in a workflow state whose fields it already has (no guards run)."""
        if record.get("state") == state:
            return dict(record)
        return self.store.set_state(
            entity, record["id"], state, expected_version=record["row_version"],
            actor=self.actor(by), comment=comment, connection=self.connection,
        )  # fmt: skip

    def at(self, days: int, hour: int, minute: int = 0) -> dt.datetime:
        """An instant `days` from today at a local wall-clock time of the app, in UTC."""
        day = self.local_today + dt.timedelta(days=days)
        local = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=_zone(self.store.app))
        return local.astimezone(UTC)

    def spread(self, plan: Sequence[tuple[str, int]]) -> list[str]:
        """`[(state, weight), ...]` scaled and shuffled: the state of each record to make."""
        states = [state for state, weight in plan for _ in range(weight * self.scale)]
        self.rng.shuffle(states)
        return states


def _zone(app: AppModel) -> ZoneInfo:
    return ZoneInfo(getattr(app.manifest, "timezone", None) or "UTC")


def seed_records(
    engine: Engine,
    apps: Mapping[str, AppModel],
    users: Mapping[str, int],
    *,
    rng_seed: int = 7,
    scale: int = 1,
) -> dict[str, int]:
    """Write demo records into each shipped app in `apps` that holds no record yet.

    Args:
        engine: a database where the apps are deployed (their tables exist).
        apps: the active AppModels by app name; apps other than `service_desk`,
            `field_service` and `procurement` are skipped.
        users: username -> id of the demo users (what `seed_org` returns).
        rng_seed: the seed of the random choices; the same seed gives the same data.
        scale: multiplies the number of tickets, work orders and purchase requests.

    Returns:
        entity name -> number of records created (the shipped apps' entity names
        do not overlap); apps skipped because they had records add nothing.
    """
    if not isinstance(scale, int) or scale < 1:
        raise DemoDataError(f"scale must be a whole number of at least 1, not {scale!r}")
    missing = [u.username for u in DEMO_USERS if u.username not in users]
    if missing:
        raise DemoDataError(f"demo users missing (run seed_org first): {', '.join(missing)}")
    created: dict[str, int] = {}
    for name, seeder in _SEEDERS.items():
        app = apps.get(name)
        if app is None:
            continue
        store = RecordStore(engine, app)
        if _has_records(store):
            continue
        with store.transaction() as connection:
            seeding = _Seeding(store, connection, users, random.Random(f"{rng_seed}/{name}"),
                               scale, _now())  # fmt: skip
            seeder(seeding)
        created.update(seeding.counts)
    return created


def _has_records(store: RecordStore) -> bool:
    """Deleted records count: an app someone has used is never seeded again."""
    return any(store.count(entity, include_deleted=True) for entity in store.app.entities)


# --------------------------------------------------------------------------- service desk

# fmt: off
_TEAMS = (
    # code, name, skills, tier, leader
    ("service_desk_l1", "一线服务台 Service Desk L1", ("software", "account", "english"), "l1",
     "agent"),
    ("service_desk_l2", "二线技术支持 L2 Support", ("hardware", "software", "network"), "l2",
     "supervisor"),
    ("vip_care", "VIP 服务组 VIP Care", ("vip_care", "english"), "l2", "supervisor"),
    ("billing_desk", "账务组 Billing Desk", ("billing",), "l1", "agent"),
    ("hardware_support", "硬件支持组 Hardware Support", ("hardware",), "l2", "supervisor"),
    ("field_support_south_east", "华东华南现场支持 Field Support East/South",
     ("hardware", "network"), "l3", "supervisor"),
)
# fmt: on
"""The team codes the routing automations name (apps/service_desk/automations)."""

# fmt: off
_CUSTOMERS = (
    # code, name, level, region, e-mail, phone
    ("C000101", "上海浦江精密制造有限公司", "vip", "east", "it@pujiang-mfg.example.com",
     "+86 21 5888 0101"),
    ("C000102", "北京华远物流集团", "vip", "north", "helpdesk@huayuan-log.example.com",
     "+86 10 8456 0102"),
    ("C000103", "Clarke & Partners Consulting (Shanghai)", "normal", "east",
     "customer@example.com", "+86 21 5208 7710"),
    ("C000104", "广州南粤医疗器械有限公司", "vip", "south", "service@nanyue-med.example.com",
     "+86 20 3866 0104"),
    ("C000105", "杭州云栖软件科技有限公司", "normal", "east", "ops@yunqi-soft.example.com",
     "+86 571 8777 0105"),
    ("C000106", "成都天府商贸有限公司", "normal", "west", "admin@tianfu-trade.example.com",
     "+86 28 8666 0106"),
    ("C000107", "武汉长江设计研究院", "normal", "central", "it@changjiang-design.example.com",
     "+86 27 8555 0107"),
    ("C000108", "深圳前海跨境电商有限公司", "normal", "south", "support@qianhai-ec.example.com",
     "+86 755 8333 0108"),
    ("C000109", "Nordlicht Trading GmbH Beijing Office", "normal", "north",
     "office@nordlicht.example.com", "+86 10 6590 0109"),
    ("C000110", "张伟", "normal", "north", "zhang.wei@example.com", "+86 139 1100 0110"),
)
# fmt: on
"""The third is the demo `customer` user's company (same e-mail)."""

_PERSON_ID_CARDS = {"C000110": "110105198803152318"}

# fmt: off
_TICKET_TOPICS = (
    # title, description, category
    ("VPN 无法连接，提示证书过期",
     "从今天上午开始所有远程员工连接 VPN 时都提示证书过期，已重启客户端无效。", "network"),
    ("Cannot log in to the customer portal",
     "Since this morning the portal rejects my password although I reset it twice; no e-mail "
     "arrives.", "account"),
    ("打印机卡纸并显示设备故障",
     "三楼财务室的激光打印机频繁卡纸，面板显示设备故障代码 E-52，影响月底结账打印。", "hardware"),
    ("发票抬头错误需要重开",
     "三月份的服务费发票抬头写成了旧公司名称，财务要求重新开具并作废原发票。", "billing"),
    ("ERP 报表导出时报错",
     "在 ERP 系统导出销售月报为 Excel 时弹出“内部错误 500”，其他报表导出正常。", "software"),
    ("Invoice amount does not match the contract",
     "The invoice for April shows 12 licences, our contract covers 10. Please correct and "
     "resend it.", "billing"),
    ("办公室网络时断时续",
     "二楼会议室和开放办公区的无线网络每隔十几分钟断开一次，有线网络正常，已持续两天。",
     "network"),
    ("新员工账号开通申请",
     "销售部下周一有三名新员工入职，需要开通邮箱、OA 和 CRM 账号，名单见附件。", "account"),
    ("服务器机房 UPS 告警", "机房 UPS 面板出现电池老化告警，昨晚市电切换时有两台服务器意外重启。",
     "hardware"),
    ("Email stuck in outbox",
     "Outgoing e-mails with attachments larger than 10 MB stay in the outbox; small ones are "
     "sent fine.", "software"),
    ("密码重置后仍无法登录",
     "用户按流程重置了域账号密码，但登录 Windows 时仍提示用户名或密码不正确。", "account"),
    ("退款申请处理进度查询",
     "上月取消的年度订阅已提交退款申请两周，至今未收到退款，请帮忙查询进度。", "billing"),
    ("视频会议系统没有声音",
     "大会议室视频会议终端能看到对方画面，但双方都听不到声音，影响明天的客户会议。", "hardware"),
    ("Laptop keeps restarting after update",
     "After last night's system update my laptop restarts every few minutes with a blue screen.",
     "software"),
    ("门店收银系统断网", "南京路门店的收银系统连不上总部服务器，只能离线收款，请尽快处理。",
     "network"),
    ("Request for a second monitor",
     "I would like a second monitor for my desk; my manager has approved it by e-mail.", "other"),
    ("CRM 客户数据同步失败", "CRM 与 ERP 之间的客户数据从昨晚 22 点起同步失败，日志显示连接超时。",
     "software"),
    ("会议室投影仪无法开机",
     "五楼小会议室的投影仪按电源键没有任何反应，指示灯也不亮，已检查电源插座。", "hardware"),
)
# fmt: on

_RESOLUTIONS = {
    "network": "已更换故障交换机端口并更新 VPN 网关证书，用户确认连接恢复正常。",
    "account": "Reset the account, cleared cached credentials; the user can log in again.",
    "hardware": "现场更换了故障部件并完成测试，设备运行正常。",
    "billing": "已作废原发票并按正确信息重新开具，电子发票已发送至客户邮箱。",
    "software": "Applied the vendor hotfix and rebuilt the user profile; the error is gone.",
    "other": "Request fulfilled as described; the user confirmed by phone.",
}

_TICKET_STATES = (
    ("new", 10), ("in_progress", 12), ("pending_customer", 6), ("closed", 8),
    ("reopened", 2), ("cancelled", 2),
)  # fmt: skip
"""About forty tickets per unit of scale, most of them still open."""

_PRIORITIES = (("p1", 4), ("p2", 8), ("p3", 18), ("p4", 10))
_CHANNELS = ("web", "email", "phone", "chat", "api")

# fmt: off
_ARTICLES = (
    # title, summary, body, category, tags, audience, published, language, author
    ("VPN 证书过期的处理方法", "更新客户端证书即可恢复 VPN 连接。",
     "1. 打开 VPN 客户端，选择“设置 - 证书”。\n2. 点击“更新证书”并输入域账号密码。\n3. "
     "重启客户端后重新连接。", "network", ("how_to", "known_error"), "public", True, "zh",
     "agent"),
    ("How to reset your portal password",
     "Use the 'Forgot password' link; the e-mail arrives within 5 minutes.",
     "1. Open the portal login page and choose 'Forgot password'.\n2. Enter your e-mail "
     "address.\n3. Follow the link in the e-mail within 30 minutes.\nIf no e-mail arrives, "
     "check the spam folder.", "account", ("how_to", "faq"), "public", True, "en", "agent"),
    ("打印机卡纸 E-52 故障排查", "E-52 多为定影组件老化，需要更换。",
     "E-52 表示定影单元温度异常。先断电冷却 30 分钟；若仍报错，联系硬件支持组更换定影组件。",
     "hardware", ("troubleshooting",), "public", True, "zh", "supervisor"),
    ("发票重开流程", "发票信息错误时的作废与重开流程。",
     "客户提供正确的开票信息后，账务组在 2 个工作日内作废原发票并重新开具电子发票。", "billing",
     ("how_to",), "public", True, "zh", "agent"),
    ("Known error: large attachments stuck in outbox", None,
     "The mail gateway rejects attachments over 10 MB. Workaround: share the file through the "
     "document portal and send the link. A permanent fix is planned with the next gateway "
     "upgrade.", "software", ("known_error", "workaround"), "internal", False, "en", "supervisor"),
    ("机房 UPS 电池更换注意事项", "更换 UPS 电池前须切换旁路并通知值班人员。",
     "仅限二线及以上工程师操作。更换前确认旁路供电正常，并提前 24 小时发布维护通知。", "hardware",
     ("how_to",), "internal", True, "zh", "supervisor"),
)
# fmt: on


def _seed_service_desk(seeding: _Seeding) -> None:
    teams = _teams(seeding)
    customers = _customers(seeding)
    tickets = _tickets(seeding, teams, customers)
    _articles(seeding, tickets)
    _surveys(seeding, tickets)


def _teams(seeding: _Seeding) -> dict[str, dict[str, Any]]:
    teams = {}
    for code, name, skills, tier, leader in _TEAMS:
        values = {
            "code": code, "name": name, "skills": list(skills), "tier": tier,
            "leader": seeding.users[leader], "queue_email": f"{code.replace('_', '-')}@example.com",
        }  # fmt: skip
        teams[code] = seeding.create("team", values, by="supervisor")
    return teams


def _customers(seeding: _Seeding) -> list[dict[str, Any]]:
    customers = []
    for code, name, level, region, email, phone in _CUSTOMERS:
        person = code in _PERSON_ID_CARDS
        values = {
            "code": code, "name": name, "level": level, "region": region, "email": email,
            "phone": phone, "company": None if person else name,
            "id_card": _PERSON_ID_CARDS.get(code), "crm_id": f"CRM-{code[1:]}",
            "account_manager": seeding.users["supervisor"] if level == "vip" else None,
        }  # fmt: skip
        customers.append(seeding.create("customer", values, by="supervisor"))
    return customers


def _ticket_team(category: str, vip: bool) -> str:
    if vip:
        return "vip_care"
    return {
        "billing": "billing_desk",
        "hardware": "service_desk_l2",
        "network": "service_desk_l2",
    }.get(category, "service_desk_l1")


def _tickets(
    seeding: _Seeding, teams: Mapping[str, dict[str, Any]], customers: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    rng = seeding.rng
    own_company = next(c for c in customers if c["email"] == "customer@example.com")
    tickets = []
    for index, state in enumerate(seeding.spread(_TICKET_STATES)):
        title, description, category = _TICKET_TOPICS[index % len(_TICKET_TOPICS)]
        customer = own_company if index % 6 == 2 else rng.choice(customers)
        by = "customer" if customer is own_company else rng.choice(("agent", "agent", "supervisor"))
        vip = customer["level"] == "vip"
        priority = _weighted(rng, _PRIORITIES)
        if priority == "p1" and not vip:  # rule p1_reserved_for_vip
            priority = "p2"
        elif vip and rng.random() < 0.4:  # the VIP queue's critical incidents
            priority = "p1"
        values: dict[str, Any] = {
            "title": title, "description": description, "category": category,
            "priority": priority, "customer": customer["id"],
            "channel": "web" if by == "customer" else rng.choice(_CHANNELS),
            "contact_name": "Emma Clarke" if by == "customer" else None,
            "contact_email": customer["email"],
        }  # fmt: skip
        values.update(_ticket_progress(seeding, state, category, vip, teams))
        ticket = seeding.create("ticket", values, by=by)
        comment = (
            "重复提交，已合并到较早的工单。Duplicate of an earlier ticket."
            if state == "cancelled"
            else None
        )
        tickets.append(seeding.move("ticket", ticket, state, by="supervisor", comment=comment))
    return tickets


def _ticket_progress(
    seeding: _Seeding, state: str, category: str, vip: bool, teams: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """The fields a ticket has by the time it reaches `state` (what its transitions set)."""
    if state == "new":
        return {}
    values: dict[str, Any] = {
        "team": teams[_ticket_team(category, vip)]["id"],
        "first_responded_at": seeding.now,
        "assignee": seeding.users["supervisor" if vip else "agent"],
    }
    if state in ("pending_customer", "closed", "reopened"):
        values["resolution"] = _RESOLUTIONS[category]
    if state in ("pending_customer", "closed"):
        values["resolved_at"] = seeding.now
        values["first_contact_resolved"] = seeding.rng.random() < 0.3
    if state == "closed":
        values["closed_at"] = seeding.now
    if state == "reopened":
        values["reopen_count"] = 1
        values["internal_note"] = (
            "客户反馈问题复现，需要再次排查。Customer says the problem is back."
        )
    if state == "cancelled":
        values["internal_note"] = "Duplicate ticket."
    return values


def _articles(seeding: _Seeding, tickets: Sequence[dict[str, Any]]) -> None:
    closed = [t for t in tickets if t["state"] == "closed"]
    for index, article in enumerate(_ARTICLES):
        title, summary, body, category, tags, audience, published, language, author = article
        source = next((t for t in closed if t["category"] == category), None)
        values = {
            "title": title, "summary": summary, "body": body, "category": category,
            "tags": list(tags), "audience": audience, "published": published,
            "language": language, "source_ticket": source["id"] if source else None,
            "helpful_count": 3 * index + 2 if published else 0,
            "view_count": 25 * index + 40 if published else 3,
            "reviewed_at": seeding.now if published else None,
        }  # fmt: skip
        seeding.create("knowledge_article", values, by=author)


# fmt: off
_SURVEY_ANSWERS = (
    (5, 10, ("fast", "professional"), "处理很及时，工程师很专业。"),
    (4, 8, ("friendly",), "Friendly and helpful, thanks."),
    (5, 9, ("fast", "friendly"), None),
    (2, 3, ("slow",), "等了两天才有人联系，希望能更快响应。"),
    (3, 6, ("unclear",), "The fix worked but the explanation was hard to follow."),
    None,
)
# fmt: on


def _surveys(seeding: _Seeding, tickets: Sequence[dict[str, Any]]) -> None:
    """What closing a ticket creates: a survey, answered or not; the customer's own
    tickets' surveys are assigned to the customer user so the portal shows them."""
    customer_user = seeding.users["customer"]
    closed = [t for t in tickets if t["state"] == "closed"]
    for index, ticket in enumerate(closed):
        answer = _SURVEY_ANSWERS[index % len(_SURVEY_ANSWERS)]
        values: dict[str, Any] = {
            "ticket": ticket["id"], "customer": ticket["customer"],
            "expires_at": seeding.now + dt.timedelta(days=7),
            "assignee": customer_user if ticket["created_by"] == customer_user else None,
        }  # fmt: skip
        if answer is not None:
            rating, score, tags, comment = answer
            values.update(rating=rating, recommend_score=score, tags=list(tags),
                          comment=comment, submitted_at=seeding.now)  # fmt: skip
        seeding.create("satisfaction_survey", values, by="supervisor")


def _weighted(rng: random.Random, choices: Sequence[tuple[str, int]]) -> str:
    values, weights = zip(*choices, strict=True)
    return rng.choices(values, weights=weights)[0]


# --------------------------------------------------------------------------- field service

# fmt: off
_SITES = (
    # code, name, customer, region, address, contact, phone, access notes
    ("SH-PD-01", "浦东金桥工厂", "上海浦江精密制造有限公司", "east",
     "上海市浦东新区金桥路 1288 号", "刘强", "+86 139 1700 0101",
     "进厂需提前一天登记车牌，并完成 15 分钟安全培训。"),
    ("SH-MH-02", "闵行研发中心", "上海浦江精密制造有限公司", "east",
     "上海市闵行区莘庄工业区春东路 58 号", "赵敏", "+86 139 1700 0102", None),
    ("BJ-SY-01", "顺义物流枢纽", "北京华远物流集团", "north", "北京市顺义区空港物流园 9 号库",
     "孙浩", "+86 138 1000 0103", "Gate 3 only; show the work order number to security."),
    ("GZ-HP-01", "黄埔医疗器械工厂", "广州南粤医疗器械有限公司", "south",
     "广州市黄埔区科学城开源大道 11 号", "陈晓", "+86 137 2000 0104", "洁净区需更换防静电服。"),
    ("HZ-XH-01", "西湖数据中心", "杭州云栖软件科技有限公司", "east", "杭州市西湖区云栖小镇 6 幢",
     "周洁", "+86 136 5700 0105", "机房进入需双人陪同。"),
    ("CD-GX-01", "高新区仓储中心", "成都天府商贸有限公司", "west",
     "成都市高新区天府大道北段 99 号", "王磊", "+86 135 2800 0106", None),
    ("WH-DH-01", "东湖设计院总部", "武汉长江设计研究院", "central",
     "武汉市东湖高新区光谷大道 77 号", "郑芳", "+86 134 2700 0107", None),
)
# fmt: on

# fmt: off
_ASSETS = (
    # serial, model, manufacturer, type, site code, location, contract
    ("CH-2021-00418", "AquaChill 450", "Hanbell Cooling", "chiller", "SH-PD-01", "A 栋屋顶",
     "premium"),
    ("CP-2022-01933", "AirMax 75 kW", "Kaishan Air", "compressor", "SH-PD-01", "动力站 1 号",
     "premium"),
    ("CNC-2020-7781", "VMC-850 加工中心", "Dalian Machine", "cnc", "SH-PD-01", "机加车间 3 线",
     "standard"),
    ("UPS-2023-5520", "PowerGuard 80 kVA", "Santak", "ups", "SH-MH-02", "B1 机房", "standard"),
    ("CH-2019-00102", "AquaChill 300", "Hanbell Cooling", "chiller", "BJ-SY-01", "9 号库冷站",
     "standard"),
    ("UPS-2021-3307", "PowerGuard 40 kVA", "Santak", "ups", "BJ-SY-01", "监控中心", "none"),
    ("IMG-2022-0061", "Vision CT 64", "Mindray", "imaging", "GZ-HP-01", "质检中心 2 楼",
     "premium"),
    ("CP-2020-00877", "AirMax 37 kW", "Kaishan Air", "compressor", "GZ-HP-01", "洁净车间空压房",
     "standard"),
    ("UPS-2022-9914", "PowerGuard 200 kVA", "Santak", "ups", "HZ-XH-01", "3 楼机房 A 区",
     "premium"),
    ("CH-2022-00655", "AquaChill 600", "Hanbell Cooling", "chiller", "HZ-XH-01", "屋顶冷却塔",
     "premium"),
    ("CNC-2018-1204", "LT-460 数控车床", "Shenyang Machine", "cnc", "CD-GX-01", "维修车间",
     "none"),
    ("UPS-2020-4410", "PowerGuard 60 kVA", "Santak", "ups", "WH-DH-01", "负一层配电室",
     "standard"),
)
# fmt: on

# fmt: off
_SKILLS_BY_TYPE = {
    "chiller": ["hvac", "electrical"],
    "compressor": ["mechanical"],
    "cnc": ["plc", "mechanical"],
    "ups": ["electrical"],
    "imaging": ["medical", "electrical"],
}
# fmt: on

# fmt: off
_PARTS = (
    # code, name, unit, stock, reorder level, unit cost, warehouse
    ("FLT-AC-450", "冷水机组过滤器 Chiller filter", "pcs", 24, 6, "185.00", "上海中心仓"),
    ("BAT-12V-100", "UPS 蓄电池 12V 100Ah", "pcs", 40, 16, "920.00", "上海中心仓"),
    ("CAP-450V-2200", "电解电容 450V 2200uF", "pcs", 3, 5, "68.50", "上海中心仓"),
    ("BELT-A1200", "空压机皮带 A1200", "pcs", 12, 4, "96.00", "广州仓"),
    ("OIL-CMP-20L", "空压机专用油 20L", "l", 60, 20, "42.00", "广州仓"),
    ("SNS-TEMP-PT100", "温度传感器 PT100", "pcs", 2, 4, "135.00", "北京仓"),
    ("CBL-CAT6-305", "六类网线 Cat6 cable", "m", 610, 100, "2.80", "上海中心仓"),
    ("KIT-SPINDLE-850", "主轴维修包 Spindle repair kit", "kit", 1, 1, "4860.00", "上海中心仓"),
)
# fmt: on

# fmt: off
_WORK_TOPICS = {
    "chiller": ("冷水机组出水温度偏高", "出水温度持续高于设定值 3 ℃，压缩机频繁启停。", "sensor"),
    "compressor": ("空压机压力不足", "Line pressure drops below 6 bar in the day shift.", "wear"),
    "cnc": ("加工中心主轴异响", "主轴在 6000 转以上有明显异响，加工精度下降。", "motor"),
    "ups": ("UPS 电池老化告警",
     "UPS reports battery end-of-life on two strings; runtime below 5 minutes.", "power"),
    "imaging": ("CT 设备开机自检失败", "开机自检停在球管预热步骤，报错 TUBE-07。", "control"),
}
# fmt: on

_WORK_STATES = (("new", 4), ("dispatched", 3), ("on_site", 2), ("on_hold", 1), ("cancelled", 1))
"""About a dozen work orders per unit of scale. Visits need a customer signature (an
attachment) to be checked out, so none are completed here: the open ones show the
dispatch board and the technician's day."""


def _seed_field_service(seeding: _Seeding) -> None:
    sites = {
        code: seeding.create("site", {
            "code": code, "name": name, "customer_name": customer, "region": region,
            "address": address, "contact_name": contact, "contact_phone": phone,
            "access_notes": notes,
        }, by="supervisor")
        for code, name, customer, region, address, contact, phone, notes in _SITES
    }  # fmt: skip
    assets = [_asset(seeding, sites, row) for row in _ASSETS]
    parts = [_part(seeding, row) for row in _PARTS]
    technician = _technician(seeding)
    for state in seeding.spread(_WORK_STATES):
        _work_order(seeding, seeding.rng.choice(assets), sites, state, technician, parts)


def _asset(seeding: _Seeding, sites: Mapping[str, dict[str, Any]], row: tuple) -> dict[str, Any]:
    serial, model, maker, kind, site, location, contract = row
    installed = seeding.local_today - dt.timedelta(days=seeding.rng.randint(200, 2000))
    values = {
        "serial": serial, "model": model, "manufacturer": maker, "asset_type": kind,
        "site": sites[site]["id"], "location": location, "installed_on": installed,
        "warranty_end": installed + dt.timedelta(days=3 * 365), "contract_level": contract,
    }  # fmt: skip
    return seeding.create("asset", values, by="supervisor")


def _part(seeding: _Seeding, row: tuple) -> dict[str, Any]:
    code, name, unit, stock, reorder, cost, warehouse = row
    values = {
        "code": code, "name": name, "unit": unit, "stock": stock, "reorder_level": reorder,
        "unit_cost": Decimal(cost), "warehouse": warehouse,
    }  # fmt: skip
    return seeding.create("spare_part", values, by="supervisor")


def _technician(seeding: _Seeding) -> dict[str, Any]:
    """The demo `agent` is the one field technician (a technician profile needs an account)."""
    agent = next(u for u in DEMO_USERS if u.username == "agent")
    values = {
        "name": agent.name, "employee_no": agent.employee_id, "account": seeding.users["agent"],
        "skills": ["electrical", "mechanical", "hvac", "plc"], "region": agent.region,
        "phone": agent.phone, "certification_expires": seeding.local_today + dt.timedelta(days=400),
        "max_daily_jobs": 4,
    }  # fmt: skip
    return seeding.create("technician", values, by="supervisor")


def _work_order(
    seeding: _Seeding,
    asset: dict[str, Any],
    sites: Mapping[str, dict[str, Any]],
    state: str,
    technician: dict[str, Any],
    parts: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    rng = seeding.rng
    site = next(s for s in sites.values() if s["id"] == asset["site"])
    title, description, fault = _WORK_TOPICS[asset["asset_type"]]
    work_type = "repair" if rng.random() < 0.7 else "maintenance"
    if work_type == "maintenance":
        title, description = f"{asset['model']} 季度保养 Quarterly maintenance", None
    values: dict[str, Any] = {
        "title": title, "description": description, "work_type": work_type,
        "priority": _weighted(rng, (("p1", 1), ("p2", 3), ("p3", 5), ("p4", 2))),
        "asset": asset["id"], "site": site["id"], "region": site["region"],
        "skills_needed": _SKILLS_BY_TYPE[asset["asset_type"]],
        "fault_code": fault if work_type == "repair" and state != "new" else None,
    }  # fmt: skip
    if state == "dispatched" or (values["priority"] == "p4" and work_type == "repair"):
        values["scheduled_at"] = seeding.at(rng.randint(1, 6), rng.choice((9, 10, 14)))
    if state != "new" and state != "cancelled":
        values.update(technician=technician["id"], assignee=seeding.users["agent"])
    order = seeding.create("work_order", values, by="supervisor")
    if state in ("on_site", "on_hold"):
        order = _on_site(seeding, order, technician, parts, hold=state == "on_hold")
    comment = (
        "客户已自行修复，取消派工。Fixed by the customer's own staff."
        if state == "cancelled"
        else None
    )
    return seeding.move("work_order", order, state, by="supervisor", comment=comment)


def _on_site(
    seeding: _Seeding,
    order: dict[str, Any],
    technician: dict[str, Any],
    parts: Sequence[dict[str, Any]],
    *,
    hold: bool,
) -> dict[str, Any]:
    """What checking in does (workflow `on_site`: arrival, visit count, a visit), then
    for a job put on hold its reason. The visit starts when the work order was made,
    the earliest instant the work order's rules allow for its schedule."""
    arrived = order["created_at"]
    part = seeding.rng.choice(parts)
    used = [{"spare_part": part["id"], "quantity": 1, "unit_cost": part["unit_cost"]}]
    visit = seeding.create("visit", {
        "work_order": order["id"], "technician": technician["id"], "check_in_at": arrived,
        "parts_used": [] if hold else used,
        "notes": "等待备件到货，已约客户再次上门。Waiting for parts." if hold else "现场检测中。",
        "assignee": seeding.users["agent"],
    }, by="agent")  # fmt: skip
    changes: dict[str, Any] = {
        "scheduled_at": order["scheduled_at"] or arrived, "arrived_at": arrived,
        "visit_count": 1, "last_visit": visit["id"],
    }  # fmt: skip
    if hold:
        changes["hold_reason"] = "parts"
        seeding.move("visit", visit, "abandoned", by="supervisor",
                     comment="备件缺货，本次上门作废。Parts out of stock.")  # fmt: skip
    order = seeding.update("work_order", order, changes, by="agent")
    if hold:
        order = seeding.move("work_order", order, "on_site", by="agent")
    return order


# --------------------------------------------------------------------------- procurement

# fmt: off
_SUPPLIERS = (
    # code, name, contact, categories, rating, approved
    ("S00001", "上海晨曦办公用品有限公司", "钱丽", ("office_supplies",), 4, True),
    ("S00002", "华东数码科技有限公司 East China Digital", "吴刚", ("it_equipment",), 5, True),
    ("S00003", "Bluepeak Software Licensing Ltd.", "Daniel Ross", ("software",), 4, True),
    ("S00004", "北京智合管理咨询有限公司", "冯雪", ("services",), 3, True),
    ("S00005", "苏州恒安建筑装饰工程有限公司", "何军", ("facilities",), 4, True),
    ("S00006", "深圳极速网络设备有限公司", "邓超", ("it_equipment", "software"), 3, True),
    ("S00007", "义乌宏达百货商行", "许婷", ("office_supplies", "facilities"), 2, False),
)
# fmt: on
"""S00001 is the office-supplies framework supplier named by the `suggest_supplier`
automation; S00007 is not approved (the `supplier_approved` rule refuses it)."""

# fmt: off
_BUDGETS = (
    # department, suffix, name, amount, owner
    ("IT", "OPEX", "IT 运维费用 IT operations", "300000", "supervisor"),
    ("IT", "CAPEX", "IT 设备投资 IT equipment", "500000", "supervisor"),
    ("FIELD", "TOOLS", "现场工具与耗材 Field tools", "8000", "supervisor"),
    ("FIN", "OPEX", "财务部办公费用 Finance office", "60000", "admin"),
    ("HQ", "ADMIN", "总部行政费用 Head office admin", "200000", "admin"),
)
# fmt: on
"""FIELD-...-TOOLS is deliberately small: requests on it exceed the remaining budget
(the workflow's CFO special approval)."""

# fmt: off
_REQUESTS = (
    # title, category, budget (dept, suffix), requester, items [(description, qty, price)]
    ("新员工笔记本电脑", "it_equipment", ("IT", "CAPEX"), "agent",
     (("ThinkBook 14 笔记本 i5/16G/512G", 3, "5299.00"),)),  # 15,897
    ("机房交换机更换", "it_equipment", ("IT", "CAPEX"), "supervisor",
     (("24 口千兆交换机", 2, "3680.00"), ("光模块 10G SFP+", 4, "420.00"))),  # 9,040
    ("Office 365 licences renewal", "software", ("IT", "OPEX"), "agent",
     (("Microsoft 365 Business Standard, 1 year", 25, "1120.00"),)),  # 28,000
    ("打印纸与硒鼓", "office_supplies", ("IT", "OPEX"), "agent",
     (("A4 复印纸 80g（箱）", 10, "165.00"), ("激光打印机硒鼓", 4, "389.00"))),  # 3,206
    ("Monitor arms for the service desk", "office_supplies", ("IT", "OPEX"), "agent",
     (("Dual monitor arm", 8, "329.00"),)),  # 2,632
    ("网络安全渗透测试服务", "services", ("IT", "OPEX"), "supervisor",
     (("年度外部渗透测试", 1, "36000.00"),)),  # 36,000
    ("备用 UPS 电池", "it_equipment", ("IT", "CAPEX"), "agent",
     (("UPS 蓄电池 12V 100Ah", 8, "920.00"),)),  # 7,360
    ("现场工程师工具包", "facilities", ("FIELD", "TOOLS"), "supervisor",
     (("绝缘工具套装", 4, "1280.00"), ("红外测温仪", 4, "960.00"))),  # 8,960
    ("安全鞋与工装", "facilities", ("FIELD", "TOOLS"), "supervisor",
     (("防砸安全鞋", 6, "268.00"), ("工装（套）", 6, "199.00"))),  # 2,802
    # 5,800
    ("财务部档案柜", "facilities", ("FIN", "OPEX"), "admin", (("钢制档案柜", 4, "1450.00"),)),
    ("年度审计咨询", "services", ("FIN", "OPEX"), "admin",
     (("Annual audit advisory", 1, "12000.00"),)),  # 12,000
    ("会议室视频会议终端", "it_equipment", ("HQ", "ADMIN"), "admin",
     (("视频会议一体机", 2, "8900.00"), ("全向麦克风", 2, "1600.00"))),  # 21,000
    # 2,160
    ("茶水间饮水机租赁", "facilities", ("HQ", "ADMIN"), "admin", (("饮水机年租", 3, "720.00"),)),
    ("Design software subscription", "software", ("IT", "OPEX"), "agent",
     (("Diagram tool licence, 1 year", 5, "980.00"),)),  # 4,900
    ("Ergonomic chairs", "facilities", ("HQ", "ADMIN"), "admin",
     (("Ergonomic office chair", 6, "1180.00"),)),  # 7,080
    ("备用键盘鼠标", "office_supplies", ("IT", "OPEX"), "agent",
     (("无线键鼠套装", 10, "159.00"),)),  # 1,590
)
# fmt: on
"""Totals span the approval thresholds of purchase_flow.yaml (5,000: line manager;
10,000: finance countersign) and stay below 50,000, where three quotations (attached
files) would be required."""

_REQUEST_STATES = (
    "draft",
    "it_review",
    "ordering",
    "ordered",
    "received",
    "closed",
    "cancelled",
    "rejected",
)
"""The plain states of purchase_flow; `approval` and `special_approval` are left to the
workflow engine, which keeps approval tasks for them."""

# fmt: off
_SUPPLIER_FOR = {
    "office_supplies": "S00001",
    "it_equipment": "S00002",
    "software": "S00003",
    "services": "S00004",
    "facilities": "S00005",
}
# fmt: on


def _seed_procurement(seeding: _Seeding) -> None:
    suppliers = {row[0]: _supplier(seeding, index, row) for index, row in enumerate(_SUPPLIERS)}
    departments = _department_ids(seeding.connection)
    year = seeding.local_today.year
    budgets = {
        (dept, suffix): seeding.create("budget", {
            "code": f"{dept}-{year}-{suffix}", "name": name, "department": departments[dept],
            "year": year, "amount": Decimal(amount), "owner": seeding.users[owner],
        }, by="admin")
        for dept, suffix, name, amount, owner in _BUDGETS
    }  # fmt: skip
    spending: dict[tuple[str, str], dict[str, Decimal]] = {}
    for round_ in range(seeding.scale):
        for index, request in enumerate(_REQUESTS):
            state = _request_state(request[1], index + round_)
            made = _purchase_request(seeding, request, state, budgets, suppliers, departments)
            _add_spending(spending, request[2], made)
    _book_spending(seeding, budgets, spending)


def _department_ids(connection: Connection) -> dict[str, int]:
    table = pt.departments
    codes = [d.code for d in DEMO_DEPARTMENTS]
    rows = connection.execute(select(table.c.code, table.c.id).where(table.c.code.in_(codes)))
    return {code: int(value) for code, value in rows.all()}


def _supplier(seeding: _Seeding, index: int, row: tuple) -> dict[str, Any]:
    code, name, contact, categories, rating, approved = row
    values = {
        "code": code, "name": name, "contact_name": contact, "categories": list(categories),
        "rating": rating, "approved": approved, "email": f"sales.{code.lower()}@example.com",
        "phone": f"+86 21 6{index}80 {1000 + index * 37}",
        "tax_id": f"91310000MA1K{index:02d}{code[1:]}X"[:18],
        "bank_account": f"6222 0210 0100 {4000 + index * 113:04d}",
        "contract_end": seeding.local_today + dt.timedelta(days=180 + 60 * index),
    }  # fmt: skip
    return seeding.create("supplier", values, by="supervisor")


def _request_state(category: str, index: int) -> str:
    """A spread of states; IT purchases may wait in IT review, others never do."""
    state = _REQUEST_STATES[index % len(_REQUEST_STATES)]
    if state == "it_review" and category not in ("it_equipment", "software"):
        return "draft"
    return state


def _purchase_request(
    seeding: _Seeding,
    request: tuple,
    state: str,
    budgets: Mapping[tuple[str, str], dict[str, Any]],
    suppliers: Mapping[str, dict[str, Any]],
    departments: Mapping[str, int],
) -> dict[str, Any]:
    title, category, budget_key, requester, items = request
    budget = budgets[budget_key]
    values: dict[str, Any] = {
        "title": title, "category": category, "department": departments[budget_key[0]],
        "budget": budget["id"],
        "items": [{"description": d, "quantity": q, "unit_price": Decimal(p)} for d, q, p in items],
        "justification": f"{title}：部门日常工作需要。Needed for the department's daily work.",
        "needed_by": seeding.local_today + dt.timedelta(days=seeding.rng.randint(14, 60)),
    }  # fmt: skip
    made = seeding.create("purchase_request", values, by=requester)
    changes = _request_progress(seeding, made, state, budget, suppliers)
    if changes:
        made = seeding.update("purchase_request", made, changes, by="supervisor")
    comment = {
        "rejected": "本季度暂缓采购。Deferred to next quarter."
        if made["budget_ok"]
        else "超出预算，CFO 未批准特批。Over budget; the CFO declined.",
        "cancelled": "需求已取消。No longer needed.",
    }.get(state)
    return seeding.move("purchase_request", made, state, by="supervisor", comment=comment)


def _request_progress(
    seeding: _Seeding,
    request: Mapping[str, Any],
    state: str,
    budget: Mapping[str, Any],
    suppliers: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    """What the budget check, the purchaser and the receipt have filled in by `state`."""
    if state in ("draft", "it_review", "cancelled"):
        return {}
    changes: dict[str, Any] = {
        "budget_ok": budget["amount"] >= request["total"],
        "budget_remaining": budget["amount"],
        "budget_checked_at": seeding.now,
    }
    if state == "rejected":
        return changes
    changes["supplier"] = suppliers[_SUPPLIER_FOR[request["category"]]]["id"]
    if state in ("ordered", "received", "closed"):
        number = request["number"].split("-")
        changes.update(po_number=f"PO-{number[1]}-{number[2]}", ordered_at=seeding.now)
    if state in ("received", "closed"):
        changes.update(received_at=seeding.now, receipt_note="货物已验收，数量规格无误。")
    return changes


def _add_spending(
    spending: dict[tuple[str, str], dict[str, Decimal]],
    budget_key: tuple[str, str],
    request: Mapping[str, Any],
) -> None:
    kind = {"ordered": "committed", "received": "spent", "closed": "spent"}.get(request["state"])
    if kind is not None:
        totals = spending.setdefault(budget_key, {"committed": Decimal(0), "spent": Decimal(0)})
        totals[kind] += Decimal(str(request["total"]))


def _book_spending(
    seeding: _Seeding,
    budgets: Mapping[tuple[str, str], dict[str, Any]],
    spending: Mapping[tuple[str, str], Mapping[str, Decimal]],
) -> None:
    """Budgets show what the seeded orders committed and spent, as finance would."""
    for key, totals in spending.items():
        seeding.update("budget", budgets[key], dict(totals), by="admin")


_SEEDERS: dict[str, Callable[[_Seeding], None]] = {
    "service_desk": _seed_service_desk,
    "field_service": _seed_field_service,
    "procurement": _seed_procurement,
}
