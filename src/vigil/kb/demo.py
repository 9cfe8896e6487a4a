"""Demo pages of the knowledge base: a post-mortem in Chinese (with an older draft as its first version), an
English runbook, and a Shanghai branch note, so that search, history and the per-unit view have something to
show. ``load`` is idempotent: a page whose slug exists is left alone."""

from __future__ import annotations

from sqlalchemy import select

from vigil.accounts import service as accounts
from vigil.accounts.models import OrgUnit
from vigil.core.context import Context
from vigil.kb import service
from vigil.kb.schemas import PageCreate, PageUpdate

POSTMORTEM_DRAFT = """## 概要

2026 年 11 月 3 日，财务部两名员工收到伪装成"税务局通知"的钓鱼邮件，其中一人在仿冒的 VPN 登录页输入了账号和密码。

## 时间线

| 时间 | 事件 |
|---|---|
| 09:12 | 邮件网关放行钓鱼邮件 |
| 09:40 | 员工在仿冒页面输入 VPN 密码 |
| 10:05 | 安全分析员收到 VPN 异地登录告警 |
"""

POSTMORTEM = POSTMORTEM_DRAFT + """| 10:20 | 重置密码、吊销会话（遏制） |
| 11:30 | 清除所有邮箱中的同类邮件（根除） |
| 15:00 | 核查该账号访问过的系统，均未见异常（恢复） |

## 影响

一个 VPN 账号被盗用约 25 分钟；未发现数据外泄。

## 根本原因（五个为什么）

1. 为什么账号被盗？员工在仿冒页面输入了密码。
2. 为什么能进入仿冒页面？邮件网关未拦截新注册域名。
3. 为什么密码就够登录？VPN 未启用多因素认证。
4. 为什么未启用？迁移计划推迟到了明年。
5. 为什么推迟？缺少对该风险的评估。

## 做得好的和不足的

- 好：告警 25 分钟内被处置。
- 不足：邮件网关未拦截新注册域名；VPN 没有 MFA。

## 改进措施

- [ ] VPN 启用 MFA（负责人：网络组，12 月 31 日前）
- [ ] 邮件网关拦截注册不足 30 天的域名（负责人：邮件组，11 月 30 日前）
"""

RUNBOOK = """# VPN brute force: first response

1. **Confirm**: several failed VPN logins for one account, or for many accounts from one address.
2. **Contain**: block the source address on the perimeter firewall; lock the account if a login succeeded.
3. **Check**: search the events of the last 24 hours for the address (`source.ip:ADDRESS`).
4. **Tell** the account's owner and their manager.

```
vigil search 'event.action:logon-failed AND source.ip:203.0.113.50' --since 24h
```

See also the post-mortem of the phishing incident of November 2026.
"""

BRANCH_NOTE = """## 上海分行：值班联系人

- 网络组值班电话见值班表。
- 支付业务系统变更窗口：每周四 22:00–24:00，窗口内的告警先核对变更单。
"""


def _unit(ctx: Context, name: str) -> int:
    found = ctx.session.scalar(select(OrgUnit.id).where(OrgUnit.name == name))
    return found if found is not None else accounts.root_unit_id(ctx.session)


def load(ctx: Context) -> dict[str, int]:
    created = 0
    if not service.page_exists(ctx.session, "postmortem-2026-11-phishing"):
        service.create_page(ctx, data=PageCreate(
            title="事件复盘：财务部钓鱼邮件导致 VPN 账号被盗", slug="postmortem-2026-11-phishing",
            body=POSTMORTEM_DRAFT,
            tags=["postmortem", "钓鱼", "VPN"], comment="初稿"), source_kind="postmortem", source_id="demo")
        service.update_page(ctx, slug="postmortem-2026-11-phishing", data=PageUpdate(
            body=POSTMORTEM, comment="补充根本原因和改进措施；已评审"))
        created += 1
    if not service.page_exists(ctx.session, "runbook-vpn-brute-force"):
        service.create_page(ctx, data=PageCreate(
            title="VPN brute force: first response", slug="runbook-vpn-brute-force", body=RUNBOOK,
            tags=["runbook", "VPN"]))
        created += 1
    if not service.page_exists(ctx.session, "shanghai-on-call-notes"):
        service.create_page(ctx, data=PageCreate(
            title="上海分行值班须知", slug="shanghai-on-call-notes", body=BRANCH_NOTE, tags=["值班"],
            unit_id=_unit(ctx, "上海分行 Shanghai Branch")))
        created += 1
    return {"knowledge-base pages": created} if created else {}
