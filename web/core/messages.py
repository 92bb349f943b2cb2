"""Msgids of messages raised as plain Chinese constants outside the templates.

The engine and the domain raise errors in Simplified Chinese; pages pass ``exc.message`` and field
messages through ``gettext`` when they show them (``web.core.pages.translate``). Listing the constant
texts here with ``N_`` lets ``pybabel extract -k N_`` keep them in the catalogue. Texts built with
values (``f'没有已部署的流程 "{key}"'``) cannot have a msgid and stay Chinese.
"""

from __future__ import annotations

from engine.i18n import N_

#: engine.runtime, engine.tasks, engine.profiles, engine.directory
ENGINE_MESSAGES = (
    N_('任务不存在'),
    N_('流程实例不存在'),
    N_('机构不存在'),
    N_('案件不存在'),
    N_('该任务已办理或已取消。'),
    N_('该任务已由他人认领，或您不在其候选组中。'),
    N_('该任务已委托他人办理，须待受托人办结交回后再办理。'),
    N_('迁移批次不存在'),
    N_('版本不存在'),
    N_('该任务在流程中已不可办理。'),
    N_('该任务已被他人认领或已办理。'),
    N_('您不在该任务的候选组中。'),
    N_('该任务当前没有认领人。'),
    N_('只有认领人或主管可以退回该任务。'),
    N_('只有该机构的主管可以指派任务。'),
    N_('案件已被他人更新，请刷新后重试。'),
    N_('提交的字段过多。'),
    N_('数据有误，请检查标出的字段。'),
    N_('数据有误'),
    N_('只接受文字、数字、真假值或空值。'),
    N_('分页参数无效'),
    N_('无法识别的分页游标。'),
    N_('视图无效'),
    N_('流程没有可启动的开始事件。'),
    N_('流程在未到达结束事件的情况下停止，已拒绝将其标记为完成。'),
    N_('请输入金额。'),
    N_('系统'),
    N_('认领并办理'),
)

#: engine.reminders, engine.calendar and engine.notifications (reminders, calendar overrides, notifications)
DEADLINE_MESSAGES = (
    N_('提醒不存在'),
    N_('只有该机构的主管可以调整提醒。'),
    N_('该提醒已发送或已取消。'),
    N_('请填写原因。'),
    N_('请填写一个将来的时间。'),
    N_('请说明调整依据。'),
    N_('该日期没有节假日调整'),
    N_('通知不存在'),
)

#: workflows.shared.id_numbers
DOMAIN_MESSAGES = (
    N_('公民身份号码应为 18 位（最后一位可为 X）。'),
    N_('公民身份号码中的出生日期无效。'),
    N_('公民身份号码校验位不正确。'),
)

#: web.app's error handlers look these up by status and translate them when they answer
HTTP_MESSAGES = (
    N_('请求有误。'),
    N_('请先登录。'),
    N_('您没有权限执行此操作。'),
    N_('找不到该页面或记录。'),
    N_('不支持该请求方式。'),
    N_('记录已被他人更新，请刷新后重试。'),
    N_('上传内容过大。'),
    N_('服务暂时不可用，请稍后重试。'),
    N_('请求未能完成。'),
)
