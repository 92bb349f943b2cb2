"""BPMN and DMN sources in, validated and parsed bundles out.

Pure: no database, no Flask. :func:`parse_definition` is what deployment calls to refuse a bad
source before anything is stored (it raises :class:`~engine.errors.DeploymentRejected` listing
*every* problem found, each naming the BPMN/DMN element), and what the runtime calls through
:class:`SpecCache` to parse each stored definition once per process.

SpiffWorkflow's own parser is run too, but it is not enough on its own, because it fails *open*:

* it parses lazily, following sequence flows out of the start events, so an element that is not
  reachable -- including one of a type it has no parser for, such as ``bpmn:complexGateway`` --
  is silently left out of the spec; only a *connected* unsupported element is an error;
* an event definition it does not look for (``linkEventDefinition``,
  ``compensateEventDefinition``...) turns the event into a plain "none" event;
* Camunda extensions it does not implement (listeners, ``camunda:assignee``, input/output
  mappings, ``serviceTask`` implementations...) are ignored, and a condition on a flow leaving a
  task rather than a gateway is dropped;
* a bare ``P3D`` in a timer parses fine and only fails when the timer is reached.

Each of those would deploy a process that quietly does something other than what its diagram
shows, so they are checked here against the XML, before SpiffWorkflow sees it.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeAlias

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import XSD_PATH as BPMN_XSD_PATH
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask as UserTaskMixin
from SpiffWorkflow.camunda.parser.CamundaParser import NSMAP as CAMUNDA_NSMAP
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.dmn.parser.BpmnDmnParser import SCHEMAS as DMN_SCHEMAS

from engine.errors import DeploymentRejected, ScriptRefused
from engine.i18n import N_, _
from engine.services import FengqiaoParser, is_registered

if TYPE_CHECKING:
    from engine.forms import FormSpec

__all__ = [
    'BPMN_NS',
    'CAMUNDA_NS',
    'ZEEBE_NS',
    'DMN_NAMESPACES',
    'MAX_SOURCE_BYTES',
    'SPEC_CACHE_SIZE',
    'DecisionBundle',
    'ProcessBundle',
    'SpecCache',
    'UserTaskInfo',
    'checksum',
    'parse_definition',
]

BPMN_NS: Final = 'http://www.omg.org/spec/BPMN/20100524/MODEL'
CAMUNDA_NS: Final = 'http://camunda.org/schema/1.0/bpmn'
# Camunda 8's extensions; SpiffWorkflow's Camunda dialect is Camunda 7's and ignores these.
ZEEBE_NS: Final = 'http://camunda.org/schema/zeebe/1.0'
#: DMN namespaces SpiffWorkflow's DMN parser is written for (DMN 1.1, 1.2 and 1.3).
DMN_NAMESPACES: Final = frozenset(DMN_SCHEMAS)

#: Largest source accepted, in bytes (UTF-8 for ``str`` sources). Real diagrams are tens of KB;
#: anything near this is a mistake or an attempt to tie up a worker.
MAX_SOURCE_BYTES: Final = 5 * 1024 * 1024
#: Entries :class:`SpecCache` keeps by default.
SPEC_CACHE_SIZE: Final = 256
#: At most this many problems are reported; a garbage upload can produce thousands of schema errors.
MAX_PROBLEMS: Final = 100

# The rule each problem is reported under (see engine.lint, which describes them).
RULE_PARSE: Final = 'parse'
RULE_SCHEMA: Final = 'schema'
RULE_EXECUTABLE: Final = 'executable-process'
RULE_UNSUPPORTED: Final = 'unsupported-element'
RULE_COMPLEX_GATEWAY: Final = 'no-complex-gateway'
RULE_EXTENSION: Final = 'unsupported-extension'
RULE_SERVICE_TASK: Final = 'service-task'
RULE_PRIORITY: Final = 'user-task-priority'
RULE_ASSIGNEE: Final = 'user-task-assignee'
RULE_DEADLINE: Final = 'user-task-deadline'
RULE_CONDITION_PLACEMENT: Final = 'condition-placement'
RULE_EXPRESSION: Final = 'expression'
RULE_TIMER: Final = 'timer'
RULE_DECISION_REF: Final = 'decision-ref'
RULE_CALL_ACTIVITY: Final = 'call-activity'
RULE_FORM: Final = 'form'
RULE_UNREACHABLE: Final = 'unreachable'
RULE_DMN: Final = 'dmn'

_NS: Final = {'bpmn': BPMN_NS, 'camunda': CAMUNDA_NS}

Element: TypeAlias = Any  # lxml ships no type information; this is an ``etree._Element``.
Problem: TypeAlias = dict[str, Any]
#: What :meth:`SpecCache.get_or_parse` calls on a miss: returns ``(source, dmn_sources)``.
Loader: TypeAlias = Callable[[], tuple[bytes | str, Sequence[bytes | str]]]

# -- messages ---------------------------------------------------------------------------------
# Marked with N_ and translated with _() when a problem is produced (see engine.i18n).

MSG_REJECTED = N_('流程定义未通过校验')
MSG_EMPTY = N_('文件为空。')
MSG_TOO_LARGE = N_('文件过大（{size} 字节），上限为 {limit} 字节。')
MSG_DOCTYPE = N_('不接受带 DOCTYPE 声明的 XML（可能含外部实体或实体膨胀攻击），请删除 DOCTYPE。')
MSG_NOT_XML = N_('不是有效的 XML：{error}')
MSG_WRONG_ROOT = N_('根元素“{tag}”既不是 BPMN 2.0 的 bpmn:definitions，也不是 DMN 的 definitions。')
MSG_SCHEMA = N_('第 {line} 行不符合 {standard} 规范：{error}')
MSG_TOO_MANY = N_('还有 {count} 个问题未列出。')

MSG_NO_EXECUTABLE = N_('没有可执行的流程：请在流程上设置 isExecutable="true"。')
MSG_ALL_CALLED = N_('所有可执行的流程都被调用活动引用，无法确定主流程。')
MSG_AMBIGUOUS = N_('有多个未被调用的可执行流程（{ids}），无法确定主流程：请只保留一个。')

MSG_UNSUPPORTED_ELEMENT = N_('不支持的元素类型“{tag}”：本系统的流程引擎无法执行它。')
MSG_SERVICE_TASK = N_(
    '服务任务须设为外部任务（camunda:type="external"），并以 camunda:topic 指定已注册的服务操作；"{topic}" 未注册。')
MSG_UNSUPPORTED_EVENT_DEFINITION = N_('“{tag}”不支持“{definition}”事件定义，引擎会把它当作普通事件处理。')
MSG_IGNORED_EXTENSION = N_('不支持 camunda:{name}：引擎会忽略它，设置不会生效。')
MSG_ZEEBE = N_('不支持 Camunda 8 的扩展 zeebe:{name}：请在建模器中选择 Camunda 7（Camunda Platform）。')
MSG_IGNORED_ATTRIBUTE = N_('不支持属性 camunda:{name}：引擎会忽略它，设置不会生效。')
MSG_IGNORED_PROCESS_ATTRIBUTE = N_('不支持属性 camunda:{name}：谁能发起流程由本系统的权限设置决定。')
MSG_PRIORITY = N_('camunda:priority 须为 0 到 100 的整数（数值越大越紧急），不支持表达式。')
MSG_CANDIDATE_EXPRESSION = N_('camunda:candidateGroups 只能是以逗号分隔的角色代码，不支持表达式。')
MSG_UNREACHABLE = N_('元素“{tag}”没有连接到从开始事件出发的流程上，引擎会忽略它。')
MSG_CONDITION_NOT_FROM_GATEWAY = N_('只有排他网关和包容网关的出口能带条件，“{source}”出口上的条件会被忽略。')
MSG_CONDITION_ON_DEFAULT = N_('默认顺序流不能带条件。')
MSG_EXPRESSION_EMPTY = N_('{what}为空。')
MSG_JUEL = N_('{what}须为 Python 表达式，不支持 Camunda 的 ${{…}} 写法。')
MSG_LANGUAGE = N_('{what}的语言“{language}”不受支持，只能用 Python。')
MSG_EXTERNAL_RESOURCE = N_('不支持引用外部脚本文件（camunda:resource），请把脚本写在流程里。')
MSG_REFUSED = N_('{what}未通过检查：{error}')
MSG_SCRIPT_MISSING = N_('脚本任务必须有且只有一段脚本。')
MSG_TIMER_MISSING = N_('计时器必须设置 timeDate、timeDuration 或 timeCycle 中的一项。')
MSG_TIMER_SEVERAL = N_('计时器只能设置 timeDate、timeDuration、timeCycle 中的一项。')
MSG_TIMER_UNQUOTED = N_('计时器表达式“{text}”须加引号，例如 "P3D"：它是一个 Python 表达式。')
MSG_TIMER_INVALID = N_('计时器的值“{value}”不是有效的 ISO 8601 {kind}。')
MSG_DECISION_REF_MISSING = N_('业务规则任务缺少 camunda:decisionRef。')
MSG_DECISION_REF_UNKNOWN = N_('找不到决策“{ref}”，请先部署它。已部署的决策：{known}')
MSG_CALLED_ELEMENT_MISSING = N_('调用活动缺少 calledElement。')
MSG_CALLED_ELEMENT_UNKNOWN = N_('被调用的流程“{ref}”不在本文件中。')
MSG_CALLED_NOT_EXECUTABLE = N_('被调用的流程“{ref}”标记为不可执行（isExecutable="false"）。')
MSG_FORM = N_('表单定义有误：{error}')
MSG_FORM_IGNORED = N_('只有用户任务和主流程的普通开始事件可以带表单，这里的表单不会显示。')
MSG_START_FORMS = N_('主流程只能有一个带表单的开始事件。')
MSG_SPIFF = N_('流程引擎无法解析：{error}')

MSG_DMN_PREFIX = N_('DMN 元素须使用默认命名空间或“dmn:”前缀。')
MSG_DMN_NO_DECISION = N_('DMN 文件中没有决策（decision）。')
MSG_DMN_SEVERAL_DECISIONS = N_('每个 DMN 文件只能有一个决策，请把“{id}”放到单独的文件中。')
MSG_DMN_TABLE = N_('决策必须有且只有一个决策表（decisionTable）。')
MSG_DMN_HIT_POLICY = N_('不支持命中策略“{policy}”，只能用 UNIQUE、FIRST 或 COLLECT。')
MSG_DMN_AGGREGATION = N_('不支持 COLLECT 的聚合（aggregation）。')
MSG_DMN_NO_ID = N_('元素“{tag}”缺少 id。')
MSG_DMN_INPUT_EXPRESSION = N_('输入列缺少输入表达式。')
MSG_DMN_OUTPUT_NAME = N_('输出列缺少 name。')
MSG_DMN_ENTRY_COUNT = N_('规则第 {row} 行的{kind}单元格数量（{found}）与列数（{expected}）不符。')

_WHAT_CONDITION = N_('条件表达式')
_WHAT_SCRIPT = N_('脚本')
_WHAT_TIMER = N_('计时器表达式')
_WHAT_LOOP = N_('循环表达式')
_WHAT_MESSAGE = N_('消息表达式')
_WHAT_CORRELATION = N_('消息关联表达式')
_WHAT_DMN_INPUT = N_('输入表达式')
_WHAT_DMN_INPUT_ENTRY = N_('规则第 {row} 行的输入条件')
_WHAT_DMN_OUTPUT_ENTRY = N_('规则第 {row} 行的输出值')
_KIND_DATE = N_('日期时间')
_KIND_DURATION = N_('时长')
_KIND_CYCLE = N_('循环周期')
_KIND_INPUT = N_('输入')
_KIND_OUTPUT = N_('输出')
_NONE = N_('无')

# -- what the engine can run ------------------------------------------------------------------

# Derived from the parser itself so that an upgrade that adds a parser class widens this set.
_PARSED_FLOW_NODES: Final = frozenset(
    etree.QName(tag).localname
    for tag in {**FengqiaoParser.PARSER_CLASSES, **FengqiaoParser.OVERRIDE_PARSER_CLASSES}
)

_FLOW_NODES: Final = _PARSED_FLOW_NODES

_CONTAINERS: Final = frozenset({'process', 'subProcess', 'transaction', 'adHocSubProcess'})

# Children a process or subprocess may have that are not flow nodes; anything else in the BPMN
# namespace is a flow node type (or a schema error the XSD check reports).
NON_FLOW_CHILDREN: Final = frozenset({
    'documentation', 'extensionElements', 'auditing', 'monitoring', 'categoryValueRef',
    'supportedInterfaceRef', 'ioSpecification', 'ioBinding', 'property', 'laneSet', 'sequenceFlow',
    'dataObject', 'dataObjectReference', 'dataStoreReference', 'textAnnotation', 'association', 'group',
    'performer', 'humanPerformer', 'potentialOwner', 'resourceRole', 'correlationSubscription', 'supports',
    'incoming', 'outgoing', 'dataInputAssociation', 'dataOutputAssociation', 'standardLoopCharacteristics',
    'multiInstanceLoopCharacteristics', 'completionCondition',
})

# The event definitions SpiffWorkflow's event parsers look for, per event type
# (SpiffWorkflow/bpmn/parser/event_parsers.py); any other is silently dropped. Timers on throw
# events are left out although SpiffWorkflow looks for them: BPMN does not allow them.
_EVENT_DEFINITIONS: Final = {
    'startEvent': frozenset({'messageEventDefinition', 'signalEventDefinition', 'timerEventDefinition',
                             'conditionalEventDefinition'}),
    'endEvent': frozenset({'messageEventDefinition', 'cancelEventDefinition', 'errorEventDefinition',
                           'escalationEventDefinition', 'terminateEventDefinition'}),
    'intermediateCatchEvent': frozenset({'messageEventDefinition', 'signalEventDefinition',
                                         'timerEventDefinition', 'conditionalEventDefinition'}),
    'intermediateThrowEvent': frozenset({'escalationEventDefinition', 'messageEventDefinition',
                                         'signalEventDefinition'}),
    'boundaryEvent': frozenset({'cancelEventDefinition', 'errorEventDefinition', 'escalationEventDefinition',
                                'messageEventDefinition', 'signalEventDefinition', 'timerEventDefinition',
                                'conditionalEventDefinition'}),
}

# Camunda extension elements and attributes SpiffWorkflow ignores; a designer who set one expects
# an effect (a listener to run, a variable mapping, an assignee) that would never happen.
_IGNORED_CAMUNDA_EXTENSIONS: Final = frozenset({
    'executionListener', 'taskListener', 'inputOutput', 'connector', 'in', 'out', 'field',
})
_IGNORED_CAMUNDA_ATTRIBUTES: Final = frozenset({
    'assignee', 'candidateUsers', 'dueDate', 'followUpDate', 'priority', 'class', 'delegateExpression',
    'type', 'topic', 'resultVariable', 'mapDecisionResult', 'initiator',
})
# On the process: who may start it. Ignored, it would give a false sense of access control.
# On a service task these two name the operation to run (engine.services).
_SERVICE_ATTRIBUTES: Final = frozenset({'type', 'topic'})
# On a user task, its urgency in the to-do lists (a number 0–100, no expression).
_USER_TASK_ATTRIBUTES: Final = frozenset({'priority'})
_PRIORITY: Final = re.compile(r'^(100|[1-9]?[0-9])$')
_SUPPORTED_ATTRIBUTES: Final = {'serviceTask': _SERVICE_ATTRIBUTES, 'userTask': _USER_TASK_ATTRIBUTES}
_IGNORED_CAMUNDA_PROCESS_ATTRIBUTES: Final = frozenset({'candidateStarterGroups', 'candidateStarterUsers'})

_PYTHON_LANGUAGES: Final = frozenset({'', 'python', 'python3', 'text/x-python'})
_CONDITIONAL_GATEWAYS: Final = frozenset({'exclusiveGateway', 'inclusiveGateway'})
_TIMER_KINDS: Final = ('timeDate', 'timeDuration', 'timeCycle')  # SpiffWorkflow's order of precedence
# An unquoted ISO 8601 duration or date: valid-looking to a designer, but a Python name or a
# syntax error to the engine.
_ISO_LIKE: Final = re.compile(r'R?\d*/?P[0-9YMWDTHS.,]+|\d{4}-\d{2}-\d{2}([T ][0-9:.+\-Z]+)?', re.IGNORECASE)
_DMN_HIT_POLICIES: Final = frozenset({'UNIQUE', 'FIRST', 'COLLECT'})
# DMNEngine.evaluate's pattern: a "?" outside quotes stands for the input value.
_DMN_PLACEHOLDER: Final = re.compile(r'(\?)(?=(?:[^\'"]|[\'"][^\'"]*[\'"])*$)')


# -- result types -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class UserTaskInfo:
    """What the runtime needs to know about one ``bpmn:userTask`` without walking the XML again.

    :param bpmn_id: the task's id in the diagram
    :param title: its ``name``, else the id
    :param candidate_groups: ``camunda:candidateGroups`` split on commas, else the lane name,
        else empty
    :param lane: the lane the task (or its enclosing subprocess) is in
    :param documentation: the task's ``bpmn:documentation`` text
    :param properties: ``camunda:properties`` name to value (deadline rules and the like)
    :param form: the task's form; one without fields when it has no ``camunda:formData``
    :param process_id: the process or embedded subprocess whose spec holds the task
    :param priority: ``camunda:priority`` (0–100), 0 when absent
    """

    bpmn_id: str
    title: str
    candidate_groups: tuple[str, ...]
    lane: str | None
    documentation: str | None
    properties: dict[str, str]
    form: FormSpec
    process_id: str
    priority: int = 0


@dataclass(frozen=True, eq=False)
class ProcessBundle:
    """A parsed, validated BPMN definition; shared between threads, so treat it as read-only.

    :param key: the id of the executable process: the definition key cases are started with
    :param name: the process name, else its pool's name, else the key
    :param spec: SpiffWorkflow's spec of the executable process
    :param subprocess_specs: specs of its embedded subprocesses and called processes, by id
    :param user_tasks: every user task in the process and its subprocesses/called processes, by id
    :param start_form: the form on the (none) start event, if it has one
    :param documentation: the process's ``bpmn:documentation`` text
    """

    key: str
    name: str
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec]
    user_tasks: dict[str, UserTaskInfo]
    start_form: FormSpec | None
    documentation: str | None


@dataclass(frozen=True)
class DecisionBundle:
    """A validated DMN definition.

    :param key: the DMN ``definitions`` id (the single decision's id if it has none)
    :param name: the decision's name, else the definitions name, else the key
    :param decision_ids: the decision ids business rule tasks refer to (SpiffWorkflow supports one)
    """

    key: str
    name: str
    decision_ids: tuple[str, ...]


# -- entry points -----------------------------------------------------------------------------


def parse_definition(source: bytes | str, *, dmn_sources: Sequence[bytes | str] = (),
                     filename: str = 'upload') -> ProcessBundle | DecisionBundle:
    """Validate and parse a BPMN or DMN source.

    :param source: the XML; ``str`` is encoded as UTF-8
    :param dmn_sources: deployed DMN sources business rule tasks may refer to (ignored for DMN)
    :param filename: shown in SpiffWorkflow's messages and stored on the spec
    :return: a :class:`ProcessBundle` for BPMN, a :class:`DecisionBundle` for DMN
    :raise DeploymentRejected: listing every problem found, each as
        ``{"element": id or None, "message": text}``
    """
    root = _parse_xml(source)
    qname = etree.QName(root)
    if qname.localname == 'definitions' and qname.namespace == BPMN_NS:
        return _parse_bpmn(root, dmn_sources, filename)
    if qname.localname == 'definitions' and qname.namespace in DMN_NAMESPACES:
        return _parse_dmn(root, filename)
    raise _rejected(root.get('id'), _(MSG_WRONG_ROOT).format(tag=root.tag))


def unsupported_rule(local: str) -> str:
    """The rule an element type the engine cannot run is reported under.

    :param local: the BPMN local name, e.g. ``complexGateway``
    """
    return RULE_COMPLEX_GATEWAY if local == 'complexGateway' else RULE_UNSUPPORTED


def supported_flow_nodes() -> frozenset[str]:
    """Local names of the BPMN flow node types the engine's parser can run."""
    return _FLOW_NODES


def supported_event_definitions(local: str) -> frozenset[str] | None:
    """Event definitions the engine implements on an event of type ``local``; None: not an event."""
    return _EVENT_DEFINITIONS.get(local)


def main_process_id(root: Element) -> str | None:
    """The id of the one executable process nothing in ``root`` calls, or None if there is not one."""
    processes = {p.get('id'): p for p in _bpmn_children(root, 'process') if p.get('id')}
    return _main_process(root, processes, _Problems())


def scoped_processes(root: Element) -> list[Element]:
    """The processes a deployment of ``root`` runs: the main one first, then those it calls.

    When the file has no single main process (none is executable, or several are), every process
    in it, so that a report can still say what is wrong with each.
    """
    processes = {p.get('id'): p for p in _bpmn_children(root, 'process') if p.get('id')}
    main_id = _main_process(root, processes, _Problems())
    return _relevant_processes(main_id, processes) if main_id is not None else list(processes.values())


def read_xml(source: bytes | str) -> Element:
    """Parse untrusted XML the way :func:`parse_definition` does (no DTD, entities or network).

    :raise DeploymentRejected: too large, empty, a DOCTYPE, or not well-formed
    """
    return _parse_xml(source)


def checksum(source: bytes | str) -> str:
    """SHA-256 of the exact source bytes (``str`` as UTF-8), as 64 hex digits.

    Deliberately not normalised: the stored source is what runs, so any byte of difference is a
    different definition.

    :param source: the XML as uploaded or stored
    :return: the hex digest
    """
    return hashlib.sha256(_as_bytes(source)).hexdigest()


class SpecCache:
    """Thread-safe LRU of parsed bundles by definition id.

    A definition row never changes once stored, so its id identifies its bundle for good; each one
    is parsed at most once per process while it stays cached, even when several threads ask for it
    at the same time.

    :param maxsize: how many bundles to keep
    """

    def __init__(self, maxsize: int = SPEC_CACHE_SIZE) -> None:
        if maxsize < 1:
            raise ValueError('maxsize must be at least 1')
        self.maxsize = maxsize
        self._entries: OrderedDict[Hashable, ProcessBundle | DecisionBundle] = OrderedDict()
        self._lock = threading.Lock()
        # One lock per definition being parsed, so a slow parse blocks only callers of that id.
        self._loading: dict[Hashable, threading.Lock] = {}

    def get_or_parse(self, def_id: Hashable, loader: Loader) -> ProcessBundle | DecisionBundle:
        """Return the cached bundle of ``def_id``, parsing it on a miss.

        :param def_id: the definition's primary key
        :param loader: returns ``(source, dmn_sources)``; called only on a miss
        :return: the bundle
        :raise DeploymentRejected: the stored source no longer parses (nothing is cached)
        """
        with self._lock:
            cached = self._get(def_id)
            if cached is not None:
                return cached
            loading = self._loading.setdefault(def_id, threading.Lock())
        with loading:
            with self._lock:
                # Another thread may have parsed it while this one waited.
                cached = self._get(def_id)
                if cached is not None:
                    return cached
            try:
                source, dmn_sources = loader()
                bundle = parse_definition(source, dmn_sources=dmn_sources, filename=f'definition-{def_id}')
                with self._lock:
                    self._entries[def_id] = bundle
                    while len(self._entries) > self.maxsize:
                        self._entries.popitem(last=False)
                return bundle
            finally:
                with self._lock:
                    self._loading.pop(def_id, None)

    def invalidate(self, def_id: Hashable) -> None:
        """Forget one bundle (e.g. after a test database is reset and ids are reused)."""
        with self._lock:
            self._entries.pop(def_id, None)

    def clear(self) -> None:
        """Forget every bundle."""
        with self._lock:
            self._entries.clear()

    def __contains__(self, def_id: object) -> bool:
        with self._lock:
            return def_id in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _get(self, def_id: Hashable) -> ProcessBundle | DecisionBundle | None:
        # Caller holds self._lock.
        bundle = self._entries.get(def_id)
        if bundle is not None:
            self._entries.move_to_end(def_id)
        return bundle


# -- problems ---------------------------------------------------------------------------------


class _Problems:
    """Collects problems so a designer sees all of them after one deployment attempt.

    Each problem also names the check that found it (``rule``), so that :mod:`engine.lint` can put
    these hard failures into the same report as its own findings.

    :param rule: the rule of problems added without one
    """

    def __init__(self, rule: str = RULE_PARSE) -> None:
        self.items: list[Problem] = []
        self.rule = rule
        self._seen: set[tuple[str | None, str]] = set()

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, element: str | None, message: str, rule: str | None = None) -> None:
        key = (element or None, message)
        if key not in self._seen:
            self._seen.add(key)
            self.items.append({'element': key[0], 'message': message, 'rule': rule or self.rule})

    @contextmanager
    def using(self, rule: str) -> Iterator[None]:
        """Problems added inside the block without a rule of their own are ``rule``'s."""
        previous, self.rule = self.rule, rule
        try:
            yield
        finally:
            self.rule = previous

    def names(self, element: str | None) -> bool:
        return any(problem['element'] == element for problem in self.items)

    def raise_if_any(self) -> None:
        if self.items:
            self.reject()

    def reject(self) -> NoReturn:
        items = self.items[:MAX_PROBLEMS]
        if len(self.items) > MAX_PROBLEMS:
            items.append({'element': None, 'rule': RULE_PARSE,
                          'message': _(MSG_TOO_MANY).format(count=len(self.items) - MAX_PROBLEMS)})
        raise DeploymentRejected(_(MSG_REJECTED), items)


def _rejected(element: str | None, message: str, rule: str = RULE_PARSE) -> DeploymentRejected:
    return DeploymentRejected(_(MSG_REJECTED), [{'element': element or None, 'message': message, 'rule': rule}])


# -- safe XML ---------------------------------------------------------------------------------


def _as_bytes(source: bytes | str) -> bytes:
    return source.encode('utf-8') if isinstance(source, str) else bytes(source)


def safe_xml_parser() -> etree.XMLParser:
    """A parser for untrusted XML: no DTDs, no entity expansion, no network, no huge trees."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def utf8_text(root: Element) -> str:
    """``root`` as stored text: UTF-8, with a declaration saying so whatever the document declared."""
    text: str = etree.tostring(root, encoding='unicode')
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text


def _parse_xml(source: bytes | str) -> Element:
    """Parse untrusted XML without DTDs, entities or network access.

    :raise DeploymentRejected: too large, empty, a DOCTYPE, or not well-formed
    """
    # Characters <= bytes, so a str that is too long need not be encoded to find out.
    if isinstance(source, str) and len(source) > MAX_SOURCE_BYTES:
        raise _rejected(None, _(MSG_TOO_LARGE).format(size=len(source), limit=MAX_SOURCE_BYTES))
    data = _as_bytes(source)
    if len(data) > MAX_SOURCE_BYTES:
        raise _rejected(None, _(MSG_TOO_LARGE).format(size=len(data), limit=MAX_SOURCE_BYTES))
    if not data.strip():
        raise _rejected(None, _(MSG_EMPTY))
    # Refused before parsing (as defusedxml does) so an entity bomb is never expanded at all; the
    # UTF-16 spellings cover documents whose bytes would hide the ASCII one.
    if any(marker in data for marker in (b'<!DOCTYPE', '<!DOCTYPE'.encode('utf-16-le'),
                                         '<!DOCTYPE'.encode('utf-16-be'))):
        raise _rejected(None, _(MSG_DOCTYPE))
    try:
        root = etree.fromstring(data, safe_xml_parser())
    except etree.XMLSyntaxError as error:
        raise _rejected(None, _(MSG_NOT_XML).format(error=error)) from None
    docinfo = root.getroottree().docinfo
    # The byte scan can miss other encodings; lxml's own view of the document is the backstop.
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _rejected(None, _(MSG_DOCTYPE))
    return root


_schema_lock = threading.Lock()
_schemas: dict[str, Any] = {}


def _check_schema(root: Element, xsd_path: str, standard: str, problems: _Problems) -> None:
    """Validate ``root`` against an XSD shipped with SpiffWorkflow, adding one problem per error.

    The schema catches what no parser looks at: duplicate ids, misspelt element names, elements in
    the wrong place. A schema that fails to load (SpiffWorkflow's DMN 1.2 one does) is skipped.
    """
    with _schema_lock:
        # Validators keep their error log on the instance, so validation runs under the lock too.
        if xsd_path not in _schemas:
            try:
                _schemas[xsd_path] = etree.XMLSchema(etree.parse(xsd_path))
            except (etree.XMLSchemaParseError, etree.XMLSyntaxError, OSError):
                _schemas[xsd_path] = None
        schema = _schemas[xsd_path]
        if schema is None or schema.validate(root):
            return
        errors = [(error.line, error.message, error.path) for error in schema.error_log]
    prefixes = {prefix: uri for prefix, uri in root.nsmap.items() if prefix}
    for line, message, path in errors:
        element = _element_at(root, path, line, prefixes)
        text = message.replace('{' + BPMN_NS + '}', 'bpmn:')
        problems.add(element.get('id') if element is not None else None,
                     _(MSG_SCHEMA).format(line=line, standard=standard, error=text), RULE_SCHEMA)


def _element_at(root: Element, path: str | None, line: int, prefixes: dict[str, str]) -> Element | None:
    if path:
        try:
            found = root.getroottree().xpath(path, namespaces=prefixes)
        except etree.XPathError:
            found = []
        if found and isinstance(found, list) and isinstance(found[0].tag, str):
            return found[0]
    return next((el for el in root.iter() if isinstance(el.tag, str) and el.sourceline == line), None)


# -- BPMN -------------------------------------------------------------------------------------


def _local(element: Element) -> str:
    """Local name of a BPMN-namespace element, '' for anything else (comments, extensions)."""
    if not isinstance(element.tag, str):
        return ''
    qname = etree.QName(element)
    return qname.localname if qname.namespace == BPMN_NS else ''


def _bpmn_children(element: Element, local: str) -> list[Element]:
    return list(element.iterfind(f'bpmn:{local}', _NS))


def _documentation(element: Element) -> str | None:
    texts = [(doc.text or '').strip() for doc in _bpmn_children(element, 'documentation')]
    text = '\n'.join(t for t in texts if t)
    return text or None


def _line(element: Element) -> str:
    return f'（第 {element.sourceline} 行）' if element.sourceline else ''


def _schema_view(root: Element) -> Element:
    """The document as the BPMN schema should see it.

    bpmn-js writes ``formalExpression`` inside ``correlationPropertyRetrievalExpression`` where the
    schema wants ``messagePath``; SpiffWorkflow's own validator renames it before validating, and
    so does this, on a copy, so that SpiffWorkflow's parser still gets the document as written.
    """
    path = './/bpmn:correlationPropertyRetrievalExpression/bpmn:formalExpression'
    if not root.xpath(path, namespaces=_NS):
        return root
    view = copy.deepcopy(root)
    for expression in view.xpath(path, namespaces=_NS):
        expression.tag = f'{{{BPMN_NS}}}messagePath'
    return view


def _parse_bpmn(root: Element, dmn_sources: Sequence[bytes | str], filename: str) -> ProcessBundle:
    problems = _Problems()
    _check_schema(_schema_view(root), BPMN_XSD_PATH, 'BPMN 2.0 XML', problems)

    processes = {p.get('id'): p for p in _bpmn_children(root, 'process') if p.get('id')}
    main_id = _main_process(root, processes, problems)
    if main_id is None:
        problems.reject()

    relevant = _relevant_processes(main_id, processes)
    parser = FengqiaoParser()
    for dmn_source in dmn_sources:
        _add_dmn(parser, dmn_source)

    by_id = {el.get('id'): el for el in root.iter() if isinstance(el.tag, str) and el.get('id')}
    _check_structure(relevant, processes, by_id, parser, problems)
    with problems.using(RULE_EXPRESSION):
        _check_expressions(relevant, problems)
        _check_correlations(root, problems)
    with problems.using(RULE_FORM):
        forms, start_form = _read_forms(relevant, processes[main_id], problems)
    _check_deadline_properties(relevant, problems)

    specs = _spiff_parse(parser, root, main_id, filename, problems)
    if specs is not None:
        _check_reachable(relevant, specs, problems)
    problems.raise_if_any()
    if specs is None:  # cannot happen: a failed SpiffWorkflow parse always adds a problem
        problems.reject()
    spec, subprocess_specs = specs

    main = processes[main_id]
    return ProcessBundle(
        key=main_id,
        name=(main.get('name') or '').strip() or _participant_name(root, main_id) or main_id,
        spec=spec,
        subprocess_specs=subprocess_specs,
        user_tasks=_user_tasks(relevant, {main_id: spec, **subprocess_specs}, forms),
        start_form=start_form,
        documentation=_documentation(main),
    )


def _main_process(root: Element, processes: dict[str, Element], problems: _Problems) -> str | None:
    """The one executable process nothing calls; adds a problem and returns None if there is none."""
    called = {ref for ref in root.xpath('.//bpmn:callActivity/@calledElement', namespaces=_NS)}
    # Explicit "true" only: BPMN's default is false (SpiffWorkflow's is true), and a modeler
    # writes the attribute whenever the designer ticks "executable".
    executable = [pid for pid, p in processes.items() if p.get('isExecutable') == 'true']
    candidates = [pid for pid in executable if pid not in called]
    if len(candidates) == 1:
        return candidates[0]
    if not executable:
        problems.add(None, _(MSG_NO_EXECUTABLE), RULE_EXECUTABLE)
    elif not candidates:
        problems.add(None, _(MSG_ALL_CALLED), RULE_EXECUTABLE)
    else:
        for pid in candidates:
            problems.add(pid, _(MSG_AMBIGUOUS).format(ids='、'.join(candidates)), RULE_EXECUTABLE)
    return None


def _relevant_processes(main_id: str, processes: dict[str, Element]) -> list[Element]:
    """The main process and every process it calls, directly or not, in the same file."""
    order = [main_id]
    for pid in order:  # grows while iterating: a breadth-first walk
        for ref in processes[pid].xpath('.//bpmn:callActivity/@calledElement', namespaces=_NS):
            if ref in processes and ref not in order:
                order.append(ref)
    return [processes[pid] for pid in order]


def _containers(process: Element) -> Iterator[Element]:
    yield process
    yield from process.iter(*(f'{{{BPMN_NS}}}{local}' for local in _CONTAINERS - {'process'}))


def _flow_nodes(process: Element) -> Iterator[Element]:
    """Every flow node of a process, subprocesses' contents included."""
    for container in _containers(process):
        for child in container:
            if _local(child) and _local(child) not in NON_FLOW_CHILDREN:
                yield child


def _descendants(processes: Sequence[Element], local: str) -> Iterator[Element]:
    for process in processes:
        yield from process.iter(f'{{{BPMN_NS}}}{local}')


def _add_dmn(parser: CamundaParser, source: bytes | str) -> None:
    # Stored DMN sources were validated when deployed. One that no longer reads is skipped rather
    # than reported: it may be unrelated to this process, and if a task needs it, the decisionRef
    # check reports that task.
    try:
        root = _parse_xml(source)
        if etree.QName(root).namespace in DMN_NAMESPACES and _dmn_prefix_ok(root):
            parser.add_dmn_xml(root)
    except (DeploymentRejected, ValidationException, etree.LxmlError, LookupError, AttributeError):
        pass


def _check_structure(relevant: list[Element], processes: dict[str, Element], by_id: dict[str, Element],
                     parser: FengqiaoParser, problems: _Problems) -> None:
    """Element types, event definitions, Camunda extensions, flows and references."""
    for process in relevant:
        for name in sorted(_IGNORED_CAMUNDA_PROCESS_ATTRIBUTES):
            if process.get(f'{{{CAMUNDA_NS}}}{name}') is not None:
                problems.add(process.get('id'), _(MSG_IGNORED_PROCESS_ATTRIBUTE).format(name=name), RULE_EXTENSION)
        for node in _flow_nodes(process):
            local, node_id = _local(node), node.get('id')
            if local not in _FLOW_NODES:
                problems.add(node_id, _(MSG_UNSUPPORTED_ELEMENT).format(tag=f'bpmn:{local}'), unsupported_rule(local))
                continue
            if local in _EVENT_DEFINITIONS:
                for child in node:
                    child_local = _local(child)
                    if ((child_local.endswith('EventDefinition') or child_local == 'eventDefinitionRef')
                            and child_local not in _EVENT_DEFINITIONS[local]):
                        problems.add(node_id, _(MSG_UNSUPPORTED_EVENT_DEFINITION).format(
                            tag=f'bpmn:{local}', definition=f'bpmn:{child_local}'), RULE_UNSUPPORTED)
            if local == 'serviceTask':
                _check_service_task(node, problems)
            ignored = _IGNORED_CAMUNDA_ATTRIBUTES - _SUPPORTED_ATTRIBUTES.get(local, frozenset())
            for name in sorted(ignored):
                if node.get(f'{{{CAMUNDA_NS}}}{name}') is not None:
                    problems.add(node_id, _(MSG_IGNORED_ATTRIBUTE).format(name=name), RULE_EXTENSION)
            priority = node.get(f'{{{CAMUNDA_NS}}}priority')
            if local == 'userTask' and priority is not None and not _PRIORITY.match(priority.strip()):
                problems.add(node_id, _(MSG_PRIORITY), RULE_PRIORITY)
            groups = node.get(f'{{{CAMUNDA_NS}}}candidateGroups') or ''
            if '${' in groups or '#{' in groups:
                problems.add(node_id, _(MSG_CANDIDATE_EXPRESSION), RULE_ASSIGNEE)
            if local == 'businessRuleTask':
                _check_decision_ref(node, parser, problems)
            elif local == 'callActivity':
                _check_called_element(node, processes, problems)

        # Listeners etc. may sit on the process itself, on flows and on flow nodes alike.
        for extension in process.iter(f'{{{BPMN_NS}}}extensionElements'):
            owner_id = extension.getparent().get('id')
            # Direct children only: deeper down (inside connector or inputOutput) the same names
            # are parts of an extension already reported.
            for child in extension:
                if not isinstance(child.tag, str):
                    continue
                qname = etree.QName(child)
                if qname.namespace == ZEEBE_NS:
                    problems.add(owner_id, _(MSG_ZEEBE).format(name=qname.localname), RULE_EXTENSION)
                elif qname.namespace == CAMUNDA_NS and qname.localname in _IGNORED_CAMUNDA_EXTENSIONS:
                    problems.add(owner_id, _(MSG_IGNORED_EXTENSION).format(name=qname.localname), RULE_EXTENSION)

        for flow in process.iter(f'{{{BPMN_NS}}}sequenceFlow'):
            condition = flow.find('bpmn:conditionExpression', _NS)
            if condition is None:
                continue
            source = by_id.get(flow.get('sourceRef') or '')
            if source is None:
                continue  # the schema or SpiffWorkflow reports a dangling sourceRef
            if _local(source) not in _CONDITIONAL_GATEWAYS:
                problems.add(flow.get('id'), _(MSG_CONDITION_NOT_FROM_GATEWAY).format(
                    source=source.get('name') or source.get('id')), RULE_CONDITION_PLACEMENT)
            elif source.get('default') == flow.get('id'):
                problems.add(flow.get('id'), _(MSG_CONDITION_ON_DEFAULT), RULE_CONDITION_PLACEMENT)


def _find_by_id(scope: Element, element_id: str | None) -> Element | None:
    if not element_id:
        return None
    found = scope.xpath('.//*[@id=$id]', id=element_id)
    return found[0] if found else None


def _check_service_task(node: Element, problems: _Problems) -> None:
    """A service task must be an external task whose topic names a registered operation."""
    topic = node.get(f'{{{CAMUNDA_NS}}}topic') or ''
    if node.get(f'{{{CAMUNDA_NS}}}type') != 'external' or not is_registered(topic):
        problems.add(node.get('id'), _(MSG_SERVICE_TASK).format(topic=topic), RULE_SERVICE_TASK)


def _check_decision_ref(node: Element, parser: CamundaParser, problems: _Problems) -> None:
    ref = node.get(f'{{{CAMUNDA_NS}}}decisionRef')
    if not ref:
        problems.add(node.get('id'), _(MSG_DECISION_REF_MISSING), RULE_DECISION_REF)
    elif ref not in parser.dmn_parsers:
        known = '、'.join(sorted(parser.dmn_parsers)) or _(_NONE)
        problems.add(node.get('id'), _(MSG_DECISION_REF_UNKNOWN).format(ref=ref, known=known), RULE_DECISION_REF)


def _check_called_element(node: Element, processes: dict[str, Element], problems: _Problems) -> None:
    ref = node.get('calledElement')
    if not ref:
        problems.add(node.get('id'), _(MSG_CALLED_ELEMENT_MISSING), RULE_CALL_ACTIVITY)
    elif ref not in processes:
        problems.add(node.get('id'), _(MSG_CALLED_ELEMENT_UNKNOWN).format(ref=ref), RULE_CALL_ACTIVITY)
    elif processes[ref].get('isExecutable') == 'false':
        problems.add(node.get('id'), _(MSG_CALLED_NOT_EXECUTABLE).format(ref=ref), RULE_CALL_ACTIVITY)


# -- expressions ------------------------------------------------------------------------------


def _check_expression(text: str | None, element_id: str | None, what: str, problems: _Problems,
                      *, script: bool = False) -> bool:
    """Compile ``text`` in the sandbox exactly as the engine will see it; False if refused.

    :param what: what the text is, already translated, for the message
    """
    from engine.sandbox import check_expression, check_script

    if text is None or not text.strip():
        problems.add(element_id, _(MSG_EXPRESSION_EMPTY).format(what=what))
        return False
    # Camunda's default expression language; a designer coming from Camunda writes it by habit
    # and the sandbox's syntax error would not say why. (Scripts were never JUEL, and may well
    # hold such text in a string.)
    if not script and ('${' in text or '#{' in text):
        problems.add(element_id, _(MSG_JUEL).format(what=what))
        return False
    try:
        # The raw text, not stripped: the runtime engine gets it exactly as written.
        (check_script if script else check_expression)(text)
    except ScriptRefused as error:
        problems.add(element_id, _(MSG_REFUSED).format(what=what, error=error.message))
        return False
    return True


def _check_language(element: Element, attribute: str, owner_id: str | None, what: str,
                    problems: _Problems) -> None:
    language = (element.get(attribute) or '').strip()
    if language.lower() not in _PYTHON_LANGUAGES:
        problems.add(owner_id, _(MSG_LANGUAGE).format(what=what, language=language))
    if element.get(f'{{{CAMUNDA_NS}}}resource') is not None:
        problems.add(owner_id, _(MSG_EXTERNAL_RESOURCE))


def _check_expressions(relevant: list[Element], problems: _Problems) -> None:
    """Every condition, script, timer and loop expression compiles in the sandbox."""
    for flow in _descendants(relevant, 'sequenceFlow'):
        condition = flow.find('bpmn:conditionExpression', _NS)
        if condition is not None:
            _check_language(condition, 'language', flow.get('id'), _(_WHAT_CONDITION), problems)
            _check_expression(condition.text, flow.get('id'), _(_WHAT_CONDITION), problems)

    for task in _descendants(relevant, 'scriptTask'):
        task_id = task.get('id')
        _check_language(task, 'scriptFormat', task_id, _(_WHAT_SCRIPT), problems)
        scripts = task.findall('bpmn:script', _NS)
        if len(scripts) != 1:
            problems.add(task_id, _(MSG_SCRIPT_MISSING))
            continue
        _check_expression(scripts[0].text, task_id, _(_WHAT_SCRIPT), problems, script=True)

    for definition in _descendants(relevant, 'timerEventDefinition'):
        with problems.using(RULE_TIMER):
            _check_timer(definition, problems)

    for definition in _descendants(relevant, 'conditionalEventDefinition'):
        event_id = definition.getparent().get('id')
        condition = definition.find('bpmn:condition', _NS)
        _check_expression(condition.text if condition is not None else None, event_id, _(_WHAT_CONDITION),
                          problems)

    for definition in _descendants(relevant, 'messageEventDefinition'):
        payload = definition.get(f'{{{CAMUNDA_NS}}}expression')
        if payload is not None:
            _check_expression(payload, definition.getparent().get('id'), _(_WHAT_MESSAGE), problems)

    for local in ('loopCondition', 'loopCardinality', 'completionCondition'):
        for element in _descendants(relevant, local):
            owner = element.getparent()
            if _local(owner) in ('standardLoopCharacteristics', 'multiInstanceLoopCharacteristics'):
                owner = owner.getparent()
            _check_expression(element.text, owner.get('id'), _(_WHAT_LOOP), problems)


def _check_correlations(root: Element, problems: _Problems) -> None:
    """Correlation retrieval expressions run in the sandbox over every message payload; they sit at the
    definitions level, outside any process, so :func:`_check_expressions` does not see them."""
    for prop in root.iterfind('bpmn:correlationProperty', _NS):
        for retrieval in prop.iterfind('bpmn:correlationPropertyRetrievalExpression', _NS):
            children = [child for child in retrieval if isinstance(child.tag, str)]
            # SpiffWorkflow evaluates the first child's text, formalExpression or messagePath alike.
            if children:
                _check_expression(children[0].text, prop.get('id'), _(_WHAT_CORRELATION), problems)


def _check_timer(definition: Element, problems: _Problems) -> None:
    """A timer is a Python expression SpiffWorkflow evaluates; a literal must also be valid ISO 8601."""
    event_id = definition.getparent().get('id')
    found = [(kind, el) for kind in _TIMER_KINDS if (el := definition.find(f'bpmn:{kind}', _NS)) is not None]
    if not found:
        problems.add(event_id, _(MSG_TIMER_MISSING))
        return
    if len(found) > 1:
        problems.add(event_id, _(MSG_TIMER_SEVERAL))
    kind, element = found[0]
    text = element.text or ''
    unquoted = _ISO_LIKE.fullmatch(text.strip()) is not None
    if unquoted:
        # As Python, "P3D" is a name and "2024-05-01" a syntax error; say what was meant.
        problems.add(event_id, _(MSG_TIMER_UNQUOTED).format(text=text.strip()))
        return
    if not _check_expression(text, event_id, _(_WHAT_TIMER), problems):
        return
    try:
        body = ast.parse(text.strip(), mode='eval').body
    except SyntaxError:
        return  # the sandbox accepted it, so this cannot happen; nothing more to check anyway
    literal = body.value if isinstance(body, ast.Constant) and isinstance(body.value, str) else None
    if literal is not None and not _valid_timer_value(kind, literal):
        labels = {'timeDate': _KIND_DATE, 'timeDuration': _KIND_DURATION, 'timeCycle': _KIND_CYCLE}
        problems.add(event_id, _(MSG_TIMER_INVALID).format(value=literal, kind=_(labels[kind])))


def _valid_timer_value(kind: str, value: str) -> bool:
    """Whether SpiffWorkflow's timer code accepts ``value`` for a timer of ``kind``."""
    try:
        if kind == 'timeDate':
            # A duration here would parse, then fail comparing a dict with a datetime.
            return isinstance(TimerEventDefinition.parse_time_or_duration(value), datetime)
        if kind == 'timeDuration':
            # parse_iso_duration strips *any* leading/trailing "p" and accepts an empty remainder.
            return value.upper().startswith('P') and bool(TimerEventDefinition.parse_iso_duration(value))
        cycle = TimerEventDefinition.parse_iso_recurring_interval(value)
        return value.upper().startswith('R') and bool(cycle)
    except Exception:  # any failure of SpiffWorkflow's parser means "invalid"
        return False


# -- forms ------------------------------------------------------------------------------------


def _read_forms(relevant: list[Element], main: Element,
                problems: _Problems) -> tuple[dict[str, FormSpec], FormSpec | None]:
    """Every user task's form, and the start form; form problems are reported on their task."""
    from engine.forms import form_from_xml

    forms: dict[str, FormSpec] = {}
    start_form: FormSpec | None = None
    for process in relevant:
        for node in _flow_nodes(process):
            local, node_id = _local(node), node.get('id')
            has_form = (node.get(f'{{{CAMUNDA_NS}}}formKey') is not None
                        or node.find('bpmn:extensionElements/camunda:formData', _NS) is not None)
            is_start_form = (local == 'startEvent' and node.getparent() is main and has_form
                             and not any(_local(c).endswith('EventDefinition') for c in node))
            if local != 'userTask' and not is_start_form:
                if has_form:
                    problems.add(node_id, _(MSG_FORM_IGNORED))
                continue
            try:
                form = form_from_xml(node, CAMUNDA_NSMAP)
            except DeploymentRejected as error:
                for problem in error.problems:
                    problems.add(node_id, _(MSG_FORM).format(error=problem.get('message', '')))
                continue
            if local == 'userTask':
                forms[node_id] = form
            elif start_form is None:
                start_form = form
            else:
                problems.add(node_id, _(MSG_START_FORMS))
    return forms, start_form


# -- SpiffWorkflow ----------------------------------------------------------------------------


def _spiff_parse(parser: CamundaParser, root: Element, main_id: str, filename: str,
                 problems: _Problems) -> tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec]] | None:
    """Run SpiffWorkflow's parser; it stops at its first error, which is added unless already known."""
    try:
        parser.add_bpmn_xml(root, filename=filename)
        spec = parser.get_spec(main_id)
        subprocess_specs: dict[str, BpmnProcessSpec] = parser.get_subprocess_specs(main_id)
    except ValidationException as error:
        element_id = error.id or None
        # Our own checks usually found the cause first and said it better.
        if (element_id is not None and not problems.names(element_id)) or not problems:
            element = _find_by_id(root, element_id)
            where = _line(element) if element is not None else ''
            problems.add(element_id, _(MSG_SPIFF).format(error=f'{error}{where}'))
        return None
    except Exception as error:  # the parser also raises KeyError, AttributeError...
        if not problems:
            problems.add(None, _(MSG_SPIFF).format(error=f'{error.__class__.__name__}: {error}'))
        return None
    return spec, subprocess_specs


def _check_reachable(relevant: list[Element], specs: tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec]],
                     problems: _Problems) -> None:
    """Every flow node made it into a spec; SpiffWorkflow silently drops unconnected ones."""
    spec, subprocess_specs = specs
    parsed = {task_spec.bpmn_id for s in (spec, *subprocess_specs.values())
              for task_spec in s.task_specs.values() if getattr(task_spec, 'bpmn_id', None)}
    for process in relevant:
        for node in _flow_nodes(process):
            node_id = node.get('id')
            if _local(node) in _FLOW_NODES and node_id not in parsed and not problems.names(node_id):
                problems.add(node_id, _(MSG_UNREACHABLE).format(tag=node.get('name') or node_id), RULE_UNREACHABLE)


def _participant_name(root: Element, process_id: str) -> str | None:
    for participant in root.iterfind('bpmn:collaboration/bpmn:participant', _NS):
        if participant.get('processRef') == process_id and (participant.get('name') or '').strip():
            return str(participant.get('name')).strip()
    return None


def _task_properties(node: Element) -> dict[str, str]:
    """A user task's ``camunda:properties``, name to value."""
    return {
        prop.get('name'): prop.get('value') or ''
        for prop in node.iterfind('bpmn:extensionElements/camunda:properties/camunda:property', _NS)
        if prop.get('name')
    }


def _check_deadline_properties(relevant: list[Element], problems: _Problems) -> None:
    """Deadline, reminder, escalation and clock properties of every user task (``engine.deadlines``)."""
    from engine.deadlines import check_task_properties

    for node in _descendants(relevant, 'userTask'):
        for message in check_task_properties(_task_properties(node)):
            problems.add(node.get('id'), message, RULE_DEADLINE)


def _user_tasks(relevant: list[Element], specs: dict[str, BpmnProcessSpec],
                forms: dict[str, FormSpec]) -> dict[str, UserTaskInfo]:
    """Describe every user task, in document order."""
    owners: dict[str, tuple[str, Any]] = {}
    for spec_id, spec in specs.items():
        for task_spec in spec.task_specs.values():
            # Multi-instance tasks: the "[child]" spec is the UserTask and keeps the bpmn_id.
            if isinstance(task_spec, UserTaskMixin) and task_spec.bpmn_id:
                owners[task_spec.bpmn_id] = (spec_id, task_spec)
    infos: dict[str, UserTaskInfo] = {}
    for node in _descendants(relevant, 'userTask'):
        node_id = node.get('id')
        if node_id not in owners or node_id not in forms:
            continue
        spec_id, task_spec = owners[node_id]
        lane = task_spec.lane or None
        groups_attr = node.get(f'{{{CAMUNDA_NS}}}candidateGroups') or ''
        groups = tuple(g.strip() for g in groups_attr.split(',') if g.strip())
        properties = _task_properties(node)
        infos[node_id] = UserTaskInfo(
            bpmn_id=node_id,
            title=(node.get('name') or '').strip() or node_id,
            candidate_groups=groups or ((lane,) if lane else ()),
            lane=lane,
            documentation=_documentation(node),
            properties=properties,
            form=forms[node_id],
            process_id=spec_id,
            priority=int((node.get(f'{{{CAMUNDA_NS}}}priority') or '0').strip()),
        )
    return infos


# -- DMN --------------------------------------------------------------------------------------


def _dmn_prefix_ok(root: Element) -> bool:
    """Whether SpiffWorkflow's add_dmn_xml will find the DMN elements.

    It binds its "dmn" prefix to the document's default namespace, or else to a "dmn" prefix
    the document declares; any other arrangement makes every lookup come back empty.
    """
    nsmap = root.nsmap
    bound = nsmap[None] if None in nsmap else nsmap.get('dmn')
    return bool(bound == etree.QName(root).namespace)


def _dmn_child(element: Element, ns: str, local: str) -> list[Element]:
    return list(element.iterfind(f'{{{ns}}}{local}'))


def _parse_dmn(root: Element, filename: str) -> DecisionBundle:
    ns = etree.QName(root).namespace
    if not _dmn_prefix_ok(root):
        raise _rejected(root.get('id'), _(MSG_DMN_PREFIX), RULE_DMN)
    problems = _Problems(RULE_DMN)
    _check_schema(root, DMN_SCHEMAS[ns], 'DMN XML', problems)

    decisions = _dmn_child(root, ns, 'decision')
    if not decisions:
        problems.add(root.get('id'), _(MSG_DMN_NO_DECISION))
        problems.reject()
    # SpiffWorkflow's DMNParser reads one decision per file and refuses more.
    for extra in decisions[1:]:
        problems.add(extra.get('id'), _(MSG_DMN_SEVERAL_DECISIONS).format(id=extra.get('id')))
    decision = decisions[0]
    tables = _dmn_child(decision, ns, 'decisionTable')
    if len(tables) != 1:
        problems.add(decision.get('id'), _(MSG_DMN_TABLE))
    else:
        _check_decision_table(tables[0], ns, problems)

    if not problems:
        try:
            parser = FengqiaoParser()
            parser.add_dmn_xml(root, filename=filename)
            for dmn_parser in parser.dmn_parsers.values():
                dmn_parser.parse()
        except ValidationException as error:
            problems.add(error.id or None, _(MSG_SPIFF).format(error=error))
        except Exception as error:  # the DMN parser also raises KeyError, IndexError...
            problems.add(None, _(MSG_SPIFF).format(error=f'{error.__class__.__name__}: {error}'))
    problems.raise_if_any()

    decision_id = str(decision.get('id'))
    key = root.get('id') or decision_id
    name = (decision.get('name') or '').strip() or (root.get('name') or '').strip() or key
    return DecisionBundle(key=key, name=name, decision_ids=tuple(str(d.get('id')) for d in decisions))


def _check_decision_table(table: Element, ns: str, problems: _Problems) -> None:
    """Hit policy, ids, and every expression and cell as the DMN engine will evaluate it."""
    table_id = table.get('id')
    policy = (table.get('hitPolicy') or 'UNIQUE').upper()
    # SpiffWorkflow implements UNIQUE (as "first match") and COLLECT; others would silently
    # behave like one of those.
    if policy not in _DMN_HIT_POLICIES:
        problems.add(table_id, _(MSG_DMN_HIT_POLICY).format(policy=policy))
    if table.get('aggregation'):
        problems.add(table_id, _(MSG_DMN_AGGREGATION))

    # Every element SpiffWorkflow's DMNParser reads attrib['id'] of.
    for local in ('input', 'output', 'rule', 'inputEntry', 'outputEntry'):
        for element in table.iter(f'{{{ns}}}{local}'):
            if not element.get('id'):
                problems.add(table_id, _(MSG_DMN_NO_ID).format(tag=local))

    input_expressions: list[str | None] = []
    for column in _dmn_child(table, ns, 'input'):
        text = column.findtext(f'{{{ns}}}inputExpression/{{{ns}}}text')
        if not text or not text.strip():
            problems.add(column.get('id'), _(MSG_DMN_INPUT_EXPRESSION))
            input_expressions.append(None)
        elif _check_expression(text, column.get('id'), _(_WHAT_DMN_INPUT), problems):
            input_expressions.append(text)
        else:
            input_expressions.append(None)
    outputs = _dmn_child(table, ns, 'output')
    for column in outputs:
        if not (column.get('name') or '').strip():
            problems.add(column.get('id'), _(MSG_DMN_OUTPUT_NAME))

    for row, rule in enumerate(_dmn_child(table, ns, 'rule'), start=1):
        entries = _dmn_child(rule, ns, 'inputEntry')
        results = _dmn_child(rule, ns, 'outputEntry')
        counts = ((entries, input_expressions, _KIND_INPUT), (results, outputs, _KIND_OUTPUT))
        for cells, columns, kind in counts:
            if len(cells) != len(columns):
                problems.add(rule.get('id'), _(MSG_DMN_ENTRY_COUNT).format(
                    row=row, kind=_(kind), found=len(cells), expected=len(columns)))
        for entry, input_expression in zip(entries, input_expressions, strict=False):
            text = entry.findtext(f'{{{ns}}}text')
            # DMNParser: no text or exactly "-" means "any value"; nothing is evaluated.
            if text is None or text == '-' or input_expression is None:
                continue
            _check_expression(_dmn_test_expression(input_expression, text), entry.get('id'),
                              _(_WHAT_DMN_INPUT_ENTRY).format(row=row), problems)
        for entry in results:
            text = entry.findtext(f'{{{ns}}}text')
            if text:
                _check_expression(text, entry.get('id'), _(_WHAT_DMN_OUTPUT_ENTRY).format(row=row), problems)


def _dmn_test_expression(input_expression: str, cell: str) -> str:
    """The Python expression SpiffWorkflow's DMNEngine.evaluate builds from an input cell.

    ``"red"`` becomes ``(color) == ("red")``, ``> 100000`` becomes ``amount> 100000`` and
    ``1 < ? < 5`` becomes ``1 < dmninputexpr < 5``. Whether ``==`` is needed is decided as at
    run time, where the engine's ``validate`` is the sandbox's ``check_expression``.
    """
    from engine.sandbox import ScriptSyntaxError, check_expression

    test = _DMN_PLACEHOLDER.sub('dmninputexpr', cell)
    if 'dmninputexpr' in test:
        return test
    try:
        check_expression(test)
    except ScriptSyntaxError:
        return input_expression + test
    except ScriptRefused:
        return test  # refused on its own; checking it again reports why
    return f'({input_expression}) == ({test})'
