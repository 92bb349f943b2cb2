"""Sandboxed script engine for every designer-supplied script and expression.

SpiffWorkflow's default :class:`~SpiffWorkflow.bpmn.script_engine.PythonScriptEngine` runs BPMN scripts,
gateway conditions, timer expressions and DMN cells with plain ``eval``/``exec`` and the full builtins, so a
process designer could read files, import modules or hang a worker.  Everything here goes through
RestrictedPython instead:

* the source is parsed and rewritten by :class:`SandboxPolicy` (a ``RestrictingNodeTransformer``), which
  refuses imports, classes, ``with``, ``_``-prefixed names and attributes, calls to introspection builtins,
  and the ``try`` forms that could swallow the CPU-limit interruption.  It also routes the operations that
  can allocate without bound inside one C call through guards: ``**``, ``*``, ``<<``, ``+`` and ``%``
  become ``_pow_``/``_mul_``/``_lshift_``/``_add_``/``_mod_`` calls, every f-string field becomes a
  ``_format_`` call, and every call of any callable goes through ``_apply_``;
* the code runs with a tiny builtins mapping (:data:`BASE_HELPERS` plus :func:`register_helper` additions)
  and the guard functions RestrictedPython's rewritten code calls (``_getattr_``, ``_getitem_`` ...).
  Its ``__import__`` is not Python's: it hands only ``time`` and ``_strptime`` to the C code of
  ``datetime`` (``strftime``, ``strptime``, ``date.today``) and refuses everything else.  ``_write_``
  allows item assignment on lists and dicts only, never attribute assignment on other objects;
* a per-thread ``sys.settrace`` hook stops it after :attr:`SandboxedEnvironment.cpu_time_limit` seconds of
  CPU time; Python's recursion limit is reported as a refusal too.

Bounds (no ``resource.setrlimit``: it is process-wide, and this runs inside the web server's threads).
The CPU limit cannot interrupt a single C call, so everything that allocates or loops in C is checked
*before* it runs:

* CPU: :data:`DEFAULT_CPU_TIME_LIMIT` seconds per script or expression, checked every
  :data:`TRACE_CHECK_INTERVAL` trace events;
* ints: ``**``, ``*`` and ``<<`` results of at most :data:`MAX_INT_BITS` bits;
* sequences: ``*`` and ``+`` on str/bytes/list/tuple, ``range``, ``str.ljust``/``rjust``/``center``/
  ``zfill``/``expandtabs``/``replace``/``join``/``translate``, ``list.extend``, and ``str()``/``print``/
  ``%s``/f-string of a container (every reference counted) produce at most :data:`MAX_SEQUENCE_LENGTH`
  elements or characters; ``sum`` only adds numbers;
* formatting: widths and precisions in ``%`` and f-string formats of at most :data:`MAX_FORMAT_WIDTH`,
  no ``*`` widths; ``str.format``/``format_map`` are refused (they walk attributes);
* Decimals: ``int()``, ``round()``, formatting and ``as_integer_ratio()`` refuse a Decimal whose exponent
  exceeds :data:`MAX_DECIMAL_EXPONENT` (``int(Decimal('1e1000000000'))`` runs for minutes in C);
* ``key=`` of ``sorted``/``min``/``max``/``list.sort`` must be script code or ``len``/``abs``/``bool``/
  ``float``, since a builtin key is called from C, where ``_apply_`` does not see it;
* results: the task data a script leaves and an expression's value are at most :data:`MAX_DATA_SIZE`
  characters when written out, so serializing them cannot blow up after the script is done; an error
  message taken from a script's exception is cut to :data:`MAX_ERROR_TEXT` characters.

Memory a script holds is therefore bounded by what it can allocate in its CPU time in steps of at most
these sizes (a few hundred MB in the worst case of one second of list appends).

Every refusal surfaces as :class:`engine.errors.ScriptRefused`.  When the refusal happens inside a running
workflow, SpiffWorkflow reports a ``WorkflowTaskException``; :func:`find_script_refused` digs the
``ScriptRefused`` out of it (it is the exception's ``__cause__`` and its ``exception`` attribute).
See ``docs/sandbox.md`` for the carriers and where each one is checked.
"""

from __future__ import annotations

import ast
import functools
import importlib
import keyword
import operator
import re
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal, NamedTuple

from RestrictedPython.compile import CompileResult, compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import (
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
)
from RestrictedPython.PrintCollector import PrintCollector
from RestrictedPython.transformer import INSPECT_ATTRIBUTES, RestrictingNodeTransformer, copy_locations
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

from engine.errors import ScriptRefused

__all__ = [
    'BASE_HELPERS',
    'DEFAULT_CPU_TIME_LIMIT',
    'SandboxPolicy',
    'SandboxedEnvironment',
    'SandboxedScriptEngine',
    'ScriptSyntaxError',
    'ServiceOperation',
    'check_expression',
    'check_script',
    'compile_expression',
    'compile_script',
    'find_script_refused',
    'register_helper',
    'register_service',
    'unregister_helper',
    'unregister_service',
]

DEFAULT_CPU_TIME_LIMIT: Final = 1.0
#: Line/call events between two CPU-clock reads; reading the clock is a syscall, so not on every event.
TRACE_CHECK_INTERVAL: Final = 1000
#: Largest int result (in bits) that ``**``, ``*`` and ``<<`` may produce.
MAX_INT_BITS: Final = 100_000
#: Largest str/bytes/list/tuple that ``*``, ``+``, the growing str/list methods and ``str()`` may produce,
#: and longest ``range``.
MAX_SEQUENCE_LENGTH: Final = 1_000_000
#: Largest width or precision in a ``%`` or f-string format (``'%1000000000s'`` is a gigabyte).
MAX_FORMAT_WIDTH: Final = 10_000
#: Largest ``abs(Decimal.adjusted())`` that ``int()``, ``round()``, formatting and ``as_integer_ratio()`` accept.
MAX_DECIMAL_EXPONENT: Final = 30_000
#: Largest task data (after a script) or expression result, in characters of text, every reference counted.
MAX_DATA_SIZE: Final = 5_000_000

_THIS_FILE: Final = __file__

# A name no other exec'd code uses (dataclasses and namedtuple use '<string>'), so the failing script line
# can be found in a traceback without mistaking a library frame for it.
_FILENAME: Final = '<sandbox>'
_LINE_PREFIX: Final = re.compile(r'Line (\d+):')

# Calls refused at compile time, so a bad condition is caught at deploy time rather than on the first
# instance that reaches the gateway.  Only *calls* are refused: a task-data field may well be called
# ``type`` or ``input``, and reading it must keep working.  None of these names is in the builtins anyway.
_FORBIDDEN_CALLS: Final = frozenset({
    'open', 'eval', 'exec', 'compile', 'getattr', 'setattr', 'delattr', 'hasattr', 'globals', 'locals',
    'vars', 'dir', 'type', 'object', 'super', 'input', 'breakpoint', 'help', 'memoryview', 'classmethod',
    'staticmethod', 'property', 'iter', 'next', 'id', 'exit', 'quit',
})

# ``mro()`` is the one public attribute of a class that leads to ``object`` and ``BaseException``.
_FORBIDDEN_ATTRIBUTES: Final = frozenset(INSPECT_ATTRIBUTES | {'mro'})

# Exception classes a script may name in ``except``/``raise``.  None of them is a base of _CpuLimitExceeded.
_EXCEPTION_CLASSES: Final[dict[str, type[Exception]]] = {
    cls.__name__: cls
    for cls in (Exception, ArithmeticError, AttributeError, IndexError, KeyError, LookupError, TypeError,
                ValueError, ZeroDivisionError)
}


class ScriptSyntaxError(ScriptRefused, SyntaxError):
    """The source does not even parse.

    It is also a :class:`SyntaxError` because SpiffWorkflow's DMN engine calls ``validate`` and catches
    ``SyntaxError`` to decide whether a cell needs an ``==`` in front of it.
    """


class _CpuLimitExceeded(BaseException):
    """Raised by the trace hook.

    A ``BaseException`` so that ``except Exception`` in a script cannot catch it: CPython removes a trace
    function that raised, so a script that swallowed the interruption would then run unwatched forever.
    """


# ---------------------------------------------------------------------------------------------------
# Compile-time policy
# ---------------------------------------------------------------------------------------------------

_BINOP_GUARDS: Final[dict[type[ast.operator], str]] = {
    ast.Pow: '_pow_',
    ast.Mult: '_mul_',
    ast.LShift: '_lshift_',
    ast.Add: '_add_',
    ast.Mod: '_mod_',
}


class SandboxPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy plus Fengqiao's extra refusals and the arithmetic guards."""

    def visit_Import(self, node: ast.Import) -> ast.AST:
        self.error(node, '不允许导入模块 (import)')
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        self.error(node, '不允许导入模块 (from ... import)')
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.error(node, f'不允许定义类 (class {node.name})')
        return node

    def visit_With(self, node: ast.With) -> ast.AST:
        # A context manager's __exit__ can swallow the CPU-limit interruption.
        self.error(node, '不允许使用 with 语句')
        return node

    def visit_Try(self, node: ast.Try) -> ast.AST:
        # The CPU-limit interruption must reach the caller: a bare ``except:`` would catch it, a ``finally``
        # could ``continue``/``return`` it away, and a handler type that is an arbitrary expression could
        # evaluate to BaseException.  Named handlers can only catch what the builtins name.
        if node.finalbody:
            self.error(node, '不允许使用 finally 子句')
        for handler in node.handlers:
            if handler.type is None:
                self.error(handler, '不允许使用不带异常类型的 except:')
            elif not _is_name_or_names(handler.type):
                self.error(handler, 'except 后只能写异常类名，例如 except ValueError:')
        return self.node_contents_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if isinstance(node.func, ast.Name) and node.func.id in _FORBIDDEN_CALLS:
            self.error(node, f'不允许调用 {node.func.id}()')
        result = super().visit_Call(node)
        assert isinstance(result, ast.Call)
        # Every call goes through _apply_, so the size and key checks of _check_call see each one however
        # the callable was obtained (``f = s.ljust; f(10**9)``). RestrictedPython already did this for
        # calls with * or ** arguments.
        if not (isinstance(result.func, ast.Name) and result.func.id == '_apply_'):
            func = ast.Name('_apply_', ast.Load())
            copy_locations(func, result)
            result.args.insert(0, result.func)
            result.func = func
        return result

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        # f"{x:>{10**9}}" and f"{d:f}" (a Decimal with a huge exponent) allocate inside one C call; the
        # value, its conversion and its format spec go through _format_ instead, which checks the sizes.
        node = self.node_contents_visit(node)
        spec: ast.expr = node.format_spec if node.format_spec is not None else ast.Constant('')
        call = ast.Call(func=ast.Name('_format_', ast.Load()),
                        args=[node.value, ast.Constant(node.conversion), spec], keywords=[])
        for part in (call, call.func, call.args[1], spec):
            copy_locations(part, node)
        node.value, node.conversion, node.format_spec = call, -1, None
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if node.attr == 'mro':
            self.error(node, '不允许访问属性 "mro"')
        result = super().visit_Attribute(node)
        assert isinstance(result, ast.AST)
        return result

    def visit_While(self, node: ast.While) -> ast.AST:
        node = self.node_contents_visit(node)
        # CPython 3.11 emits no trace event for a loop that jumps back onto itself (``while True: pass``
        # compiles to one self-jump), so the CPU limit would never fire.  Loading a name first gives
        # every iteration a real backward jump, which the tracer does see.
        tick = ast.Expr(ast.Name('_loop_', ast.Load()))
        copy_locations(tick, node)
        copy_locations(tick.value, node)
        node.body.insert(0, tick)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = self.node_contents_visit(node)
        guard = _BINOP_GUARDS.get(type(node.op))
        if guard is None:
            return node
        func = ast.Name(guard, ast.Load())
        call = ast.Call(func=func, args=[node.left, node.right], keywords=[])
        copy_locations(func, node)
        copy_locations(call, node)
        return call


def _is_name_or_names(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return True
    return isinstance(node, ast.Tuple) and all(isinstance(elt, ast.Name) for elt in node.elts)


class _Compiled(NamedTuple):
    code: types.CodeType | None
    errors: tuple[str, ...]
    syntax_error: SyntaxError | None


@functools.lru_cache(maxsize=4096)
def _compile_cached(source: str, mode: Literal['eval', 'exec']) -> _Compiled:
    # Failures are cached too: a broken condition on a busy gateway should not be re-parsed each time.
    if mode == 'eval':
        # builtins.eval strips leading blanks, and BPMN condition text often carries XML indentation.
        source = source.strip()
    # Parsed here rather than by RestrictedPython so a syntax error stays a SyntaxError with its position.
    result: CompileResult
    try:
        if mode == 'eval':
            expression = ast.parse(source, _FILENAME, 'eval')
            result = compile_restricted_eval(expression, _FILENAME, policy=SandboxPolicy)
        else:
            module = ast.parse(source, _FILENAME, 'exec')
            result = compile_restricted_exec(module, _FILENAME, policy=SandboxPolicy)
    except SyntaxError as exc:
        return _Compiled(None, (), exc)
    except ValueError as exc:  # null bytes in the source
        return _Compiled(None, (), SyntaxError(str(exc)))
    return _Compiled(result.code, tuple(result.errors), None)


def _compile(source: str, mode: Literal['eval', 'exec']) -> types.CodeType:
    if not isinstance(source, str):
        raise ScriptRefused(f'脚本必须是字符串，而不是 {source.__class__.__name__}')
    compiled = _compile_cached(source, mode)
    what = '表达式' if mode == 'eval' else '脚本'
    if compiled.syntax_error is not None:
        syntax = compiled.syntax_error
        error = ScriptSyntaxError(f'{what}语法错误：第 {syntax.lineno} 行：{syntax.msg}')
        error.lineno, error.offset, error.text, error.filename = (
            syntax.lineno, syntax.offset, syntax.text, _FILENAME)
        raise error
    if compiled.errors or compiled.code is None:
        raise ScriptRefused(f'{what}被沙箱拒绝：' + '；'.join(compiled.errors))
    return compiled.code


def compile_expression(source: str) -> types.CodeType:
    """Compile an expression under the sandbox policy, from the cache when possible.

    :param source: a Python expression, e.g. a gateway condition
    :returns: the code object; the same object for the same source text while it stays in the cache
    :raises ScriptRefused: the policy refused the expression (:class:`ScriptSyntaxError` if it does not parse)
    """
    return _compile(source, 'eval')


def compile_script(source: str) -> types.CodeType:
    """Compile a script under the sandbox policy, from the cache when possible.

    :param source: Python statements, e.g. a script task body
    :returns: the code object; the same object for the same source text while it stays in the cache
    :raises ScriptRefused: the policy refused the script (:class:`ScriptSyntaxError` if it does not parse)
    """
    return _compile(source, 'exec')


def check_expression(source: str) -> None:
    """Refuse an expression the sandbox would refuse, without running it (used at deploy time).

    :param source: a Python expression
    :raises ScriptRefused: with RestrictedPython's error text naming the problem and its line
    """
    compile_expression(source)


def check_script(source: str) -> None:
    """Refuse a script the sandbox would refuse, without running it (used at deploy time).

    :param source: Python statements
    :raises ScriptRefused: with RestrictedPython's error text naming the problem and its line
    """
    compile_script(source)


# ---------------------------------------------------------------------------------------------------
# Run-time guards (the names RestrictedPython's rewritten code calls)
# ---------------------------------------------------------------------------------------------------

def _guarded_getattr(obj: object, name: str) -> Any:
    if not isinstance(name, str):
        raise ScriptRefused('属性名必须是字符串')
    if name.startswith('_') or name in _FORBIDDEN_ATTRIBUTES:
        raise ScriptRefused(f'不允许访问属性 "{name}"')
    # A format string can walk attributes ("{0.__class__}") without passing through this guard.
    if name in ('format', 'format_map') and (
            isinstance(obj, str) or (isinstance(obj, type) and issubclass(obj, str))):
        raise ScriptRefused(f'不允许使用 str.{name}()，请改用 f-string 或 % 格式化')
    return getattr(obj, name)


def _guarded_getitem(obj: Any, key: Any) -> Any:
    return obj[key]


def _guarded_apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    # Script functions and lambdas need no check (their own calls are guarded); builtins, builtin
    # methods and classes (int, str) might, and print's collector does.
    if type(func) in _CHECKED_CALLABLE_TYPES:
        _check_call(func, args, kwargs)
    return func(*args, **kwargs)


def _guarded_write(obj: Any) -> Any:
    # Item assignment on lists and dicts (task data) is what scripts need; any other object -- a date,
    # a Decimal, a function -- is shared with the engine or meaningless to change.
    if isinstance(obj, (dict, list)):
        return obj
    raise ScriptRefused(f'不允许修改 {obj.__class__.__name__} 对象的属性或元素')


_REPEATABLE: Final = (str, bytes, list, tuple)


def _check_mul(left: object, right: object) -> None:
    if isinstance(left, _REPEATABLE) and isinstance(right, int):
        size = len(left) * right
    elif isinstance(right, _REPEATABLE) and isinstance(left, int):
        size = len(right) * left
    elif isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise ScriptRefused(f'乘法结果过大 (超过 {MAX_INT_BITS} 位)')
        return
    else:
        return
    if size > MAX_SEQUENCE_LENGTH:
        raise ScriptRefused(f'重复结果过长 (超过 {MAX_SEQUENCE_LENGTH} 个元素)')


def _check_pow(base: object, exponent: object) -> None:
    # Only int ** int grows without bound; float overflows and Decimal rounds to its context precision.
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if base.bit_length() * exponent > MAX_INT_BITS:
            raise ScriptRefused(f'乘方结果过大 (超过 {MAX_INT_BITS} 位)')


def _check_lshift(value: object, count: object) -> None:
    if isinstance(value, int) and isinstance(count, int) and value and count > 0:
        if value.bit_length() + count > MAX_INT_BITS:
            raise ScriptRefused(f'移位结果过大 (超过 {MAX_INT_BITS} 位)')


def _check_add(left: object, right: object) -> None:
    # ``s = s + s`` in a loop doubles: 30 rounds reach a gigabyte well inside the CPU limit.
    if isinstance(left, _REPEATABLE) and isinstance(right, _REPEATABLE):
        if len(left) + len(right) > MAX_SEQUENCE_LENGTH:
            raise ScriptRefused(f'拼接结果过长 (超过 {MAX_SEQUENCE_LENGTH} 个元素)')


def _text_size(value: object, limit: int) -> int:
    """Roughly how many characters ``str()`` or JSON makes of ``value``; stops counting past ``limit``.

    Every reference counts, so ``[s] * 1000`` with a megabyte ``s`` is a gigabyte here, as it is in
    ``str()`` and in the serialized task data.  A container that holds itself counts until the limit.
    """
    total = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, (str, bytes)):
            total += len(item) + 2
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            if total <= limit:
                pending.extend(item.keys())
                pending.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            if total <= limit:
                pending.extend(item)
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, Decimal):
            total += len(item.as_tuple().digits) + 8
        else:
            total += 32
        if total > limit:
            return total
    return total


def _check_text(value: object) -> None:
    if _text_size(value, MAX_SEQUENCE_LENGTH) > MAX_SEQUENCE_LENGTH:
        raise ScriptRefused(f'转换成文本后过长 (超过 {MAX_SEQUENCE_LENGTH} 个字符)')


def _check_data_size(value: object, what: str) -> None:
    if _text_size(value, MAX_DATA_SIZE) > MAX_DATA_SIZE:
        raise ScriptRefused(f'{what}过大 (超过 {MAX_DATA_SIZE} 个字符)，无法保存')


def _check_decimal(value: object) -> None:
    # int(), round(), as_integer_ratio() and "f" formatting write out every digit of a Decimal, whose
    # exponent is unbounded when it is made from a string: int(Decimal('1e1000000000')) runs for minutes
    # inside one C call, out of the CPU limit's reach.
    if isinstance(value, Decimal) and value.is_finite() and abs(value.adjusted()) > MAX_DECIMAL_EXPONENT:
        raise ScriptRefused(f'Decimal 数值的量级过大 (指数超过 {MAX_DECIMAL_EXPONENT})')


def _check_width(width: int, what: str) -> None:
    if width > MAX_FORMAT_WIDTH:
        raise ScriptRefused(f'{what}过大 (超过 {MAX_FORMAT_WIDTH})')


# A printf-style conversion: %[(key)][flags][width][.precision][length]type
_PERCENT_SPEC: Final = re.compile(r'%(?:\([^)]*\))?[#0 +\-]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?')
_DIGITS: Final = re.compile(r'\d+')


def _check_percent(template: str | bytes, values: object) -> None:
    text = template.decode('latin-1') if isinstance(template, bytes) else template
    for match in _PERCENT_SPEC.finditer(text):
        for part in match.groups():
            if part == '*':
                raise ScriptRefused('% 格式化不允许用 * 指定宽度或精度，请直接写数字')
            if part:
                _check_width(int(part), '% 格式化的宽度或精度')
    if isinstance(values, tuple):
        items: Iterable[object] = values
    elif isinstance(values, dict):
        items = values.values()
    else:
        items = (values,)
    for item in items:
        _check_decimal(item)
        _check_text(item)


def _guarded_add(left: Any, right: Any) -> Any:
    _check_add(left, right)
    return left + right


def _guarded_mod(left: Any, right: Any) -> Any:
    if isinstance(left, (str, bytes)):
        _check_percent(left, right)
    return left % right


def _guarded_format(value: Any, conversion: int, spec: str) -> str:
    """What an f-string's ``{value!conversion:spec}`` does, with the sizes checked first."""
    for digits in _DIGITS.findall(spec):
        _check_width(int(digits), 'f-string 的宽度或精度')
    _check_decimal(value)
    _check_text(value)
    if conversion == ord('r'):
        value = repr(value)
    elif conversion == ord('s'):
        value = str(value)
    elif conversion == ord('a'):
        value = ascii(value)
    return format(value, spec)


def _length(value: object) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)) else 0


def _int_arg(args: tuple[Any, ...], index: int, default: int) -> int:
    value = args[index] if len(args) > index else default
    return value if isinstance(value, int) else default


def _method_result_size(owner: object, name: str, args: tuple[Any, ...]) -> int:
    """The size a str/bytes/list method would produce, for the methods whose result can outgrow their input."""
    size = _length(owner)
    if name in ('ljust', 'rjust', 'center', 'zfill'):
        return max(size, _int_arg(args, 0, 0))
    if name == 'expandtabs':
        return size * max(1, _int_arg(args, 0, 8))
    if name == 'replace' and len(args) >= 2:
        growth = _length(args[1]) - _length(args[0])
        count = _int_arg(args, 2, -1)
        count = size + 1 if count < 0 else min(count, size + 1)
        return size + max(0, growth) * count
    if name == 'join' and args:
        parts = args[0]
        if not isinstance(parts, (list, tuple, set, frozenset, dict, str)):
            return 0  # a generator: its items are made, and limited, one by one in the script
        return sum(_length(part) for part in parts) + size * len(parts)
    if name == 'translate' and args and isinstance(args[0], dict):
        longest = max((_length(v) for v in args[0].values()), default=1)
        return size * max(1, longest)
    if name == 'extend' and args:
        return size + _length(args[0])
    return 0


# sorted(..., key=str) would call str() from C on every item, out of _apply_'s sight; a key must be
# script code (a lambda or def, whose own calls are checked) or one of these harmless builtins.
_SAFE_KEYS: Final = frozenset({len, abs, bool, float})
_KEY_TAKERS: Final = frozenset({sorted, min, max})


def _check_key(key: object) -> None:
    if key is not None and not isinstance(key, types.FunctionType) and key not in _SAFE_KEYS:
        raise ScriptRefused('key 参数只能是 lambda、自定义函数或 len/abs/bool/float')


def _method_target(func: object, args: tuple[Any, ...]) -> tuple[object, str, tuple[Any, ...]] | None:
    """The object and name a builtin method is called on, bound (``s.ljust``) or not (``str.ljust``)."""
    if isinstance(func, (types.BuiltinMethodType, types.MethodType)) and not isinstance(
            func.__self__, (type, types.ModuleType)):
        return func.__self__, func.__name__, args
    if isinstance(func, types.MethodDescriptorType) and args:
        return args[0], func.__name__, args[1:]
    return None


_CHECKED_CALLABLE_TYPES: Final = frozenset({
    type, types.BuiltinFunctionType, types.MethodDescriptorType, types.MethodType})
_CHECKED_METHODS: Final = frozenset({
    'ljust', 'rjust', 'center', 'zfill', 'expandtabs', 'replace', 'join', 'translate', 'extend', 'sort',
    'as_integer_ratio', '_call_print'})


def _check_call(func: object, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a call that would allocate without bound inside one C call (see the module docstring)."""
    if getattr(func, '__name__', None) in _CHECKED_METHODS:
        _check_method(func, args, kwargs)
    elif func is int or func is round:
        if args:
            _check_decimal(args[0])
    elif func is str:
        if args:
            _check_text(args[0])
    elif func in _KEY_TAKERS:
        _check_key(kwargs.get('key'))


def _check_method(func: object, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    target = _method_target(func, args)
    if target is None:
        return
    owner, name, rest = target
    if isinstance(owner, PrintCollector):
        _check_text(rest)
    elif isinstance(owner, Decimal) and name == 'as_integer_ratio':
        _check_decimal(owner)
    elif isinstance(owner, list) and name == 'sort':
        _check_key(kwargs.get('key'))
    elif isinstance(owner, (str, bytes, list)):
        if _method_result_size(owner, name, rest) > MAX_SEQUENCE_LENGTH:
            raise ScriptRefused(f'{owner.__class__.__name__}.{name}() 的结果过长 (超过 {MAX_SEQUENCE_LENGTH} 个元素)')


def _guarded_pow(base: Any, exponent: Any) -> Any:
    _check_pow(base, exponent)
    return base ** exponent


def _guarded_mul(left: Any, right: Any) -> Any:
    _check_mul(left, right)
    return left * right


def _guarded_lshift(value: Any, count: Any) -> Any:
    _check_lshift(value, count)
    return value << count


_INPLACE_OPERATORS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    '+=': operator.iadd,
    '-=': operator.isub,
    '*=': operator.imul,
    '/=': operator.itruediv,
    '//=': operator.ifloordiv,
    '%=': operator.imod,
    '**=': operator.ipow,
    '<<=': operator.ilshift,
    '>>=': operator.irshift,
    '&=': operator.iand,
    '|=': operator.ior,
    '^=': operator.ixor,
}

_INPLACE_CHECKS: Final[dict[str, Callable[[object, object], None]]] = {
    '+=': _check_add,
    '*=': _check_mul,
    '**=': _check_pow,
    '<<=': _check_lshift,
}


def _guarded_inplacevar(op: str, target: Any, value: Any) -> Any:
    func = _INPLACE_OPERATORS.get(op)
    if func is None:
        raise ScriptRefused(f'不支持的复合赋值运算 {op}')
    check = _INPLACE_CHECKS.get(op)
    if check is not None:
        check(target, value)
    return func(target, value)


def _limited_range(*args: int) -> range:
    result = range(*args)
    try:
        length = len(result)
    except OverflowError:
        length = MAX_SEQUENCE_LENGTH + 1
    # A huge range is consumed inside one C call by sum()/list()/sorted(), where the CPU limit cannot reach.
    if length > MAX_SEQUENCE_LENGTH:
        raise ScriptRefused(f'range 过长 (超过 {MAX_SEQUENCE_LENGTH} 个元素)')
    return result


def _numeric_sum(iterable: Iterable[Any], /, start: Any = 0) -> Any:
    # sum(lists, []) concatenates quadratically inside one C call.
    if isinstance(start, (str, bytes, list, tuple)):
        raise ScriptRefused('sum() 只能用于数字')
    return sum(iterable, start)


# Built from scratch rather than from RestrictedPython's safe_builtins/utility_builtins: those carry
# __build_class__, setattr, id and whole modules (math, random, string) that scripts do not need.
#: The helpers every script and expression sees, before :func:`register_helper` additions.
BASE_HELPERS: Final[Mapping[str, Any]] = types.MappingProxyType({
    'len': len,
    'min': min,
    'max': max,
    'sum': _numeric_sum,
    'abs': abs,
    'round': round,
    'sorted': sorted,
    'any': any,
    'all': all,
    'int': int,
    'float': float,
    'str': str,
    'bool': bool,
    'list': list,
    'dict': dict,
    'tuple': tuple,
    'set': set,
    'range': _limited_range,
    'enumerate': enumerate,
    'zip': zip,
    'isinstance': isinstance,
    'date': date,
    'datetime': datetime,
    'timedelta': timedelta,
    'Decimal': Decimal,
    **_EXCEPTION_CLASSES,
})

# C code in the datetime module (strftime, strptime, date.today, f"{d:%Y}") imports these through the
# builtins of the *calling* frame, which are ours.  Scripts themselves cannot reach this hook: ``import``
# and every ``_``-prefixed name are refused at compile time.
_HOST_IMPORTS: Final = frozenset({'time', '_strptime'})


def _host_import(name: str, globals: object = None, locals: object = None,
                 fromlist: object = (), level: int = 0) -> types.ModuleType:
    if level == 0 and name in _HOST_IMPORTS:
        return importlib.import_module(name)
    raise ScriptRefused(f'不允许导入模块 {name}')


_GUARDS: Final[Mapping[str, Any]] = types.MappingProxyType({
    '__import__': _host_import,
    '_getattr_': _guarded_getattr,
    '_getitem_': _guarded_getitem,
    '_getiter_': iter,
    '_write_': _guarded_write,
    '_iter_unpack_sequence_': guarded_iter_unpack_sequence,
    '_unpack_sequence_': guarded_unpack_sequence,
    '_inplacevar_': _guarded_inplacevar,
    '_apply_': _guarded_apply,
    '_print_': PrintCollector,
    '_pow_': _guarded_pow,
    '_mul_': _guarded_mul,
    '_lshift_': _guarded_lshift,
    '_add_': _guarded_add,
    '_mod_': _guarded_mod,
    '_format_': _guarded_format,
    '_loop_': None,
})

# Names the sandbox reserves: its guards, ``__builtins__`` and the ``_print`` collector RestrictedPython
# assigns.  Task data may not use them, and execute() never leaves them in it.
_INTERNAL_NAMES: Final = frozenset({'__builtins__', '_print'}) | frozenset(_GUARDS)

#: A service operation: called with the task data and SpiffWorkflow's remaining keyword arguments
#: (``operation_params`` for a service task); SpiffWorkflow's service task ``json.loads`` the result.
ServiceOperation = Callable[..., Any]


_registry_lock = threading.Lock()
_extra_helpers: dict[str, Any] = {}
_services: dict[str, ServiceOperation] = {}


def _build_builtins() -> dict[str, Any]:
    # Guards live in the builtins mapping rather than in task data; scripts cannot rebind ``_`` names.
    return {**BASE_HELPERS, **_extra_helpers, **_GUARDS}


# Replaced wholesale on registration, never mutated, so a running script always sees a consistent mapping.
_builtins: dict[str, Any] = _build_builtins()


def _check_registry_name(name: str) -> None:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f'{name!r} is not a valid Python identifier')
    if name.startswith('_'):
        raise ValueError(f'{name!r}: names starting with "_" are reserved for the sandbox')


def register_helper(name: str, fn: Any) -> None:
    """Make ``fn`` available under ``name`` to every script and expression.

    This is how domain packages add functions such as working-day arithmetic without the sandbox
    importing them.  A helper runs inside the CPU limit but is otherwise trusted code: it must not hand
    scripts modules, classes or other objects that open a way out.

    :param name: a Python identifier not starting with ``_`` and not one of :data:`BASE_HELPERS`
    :param fn: usually a function; any value is accepted
    :raises ValueError: for a reserved or invalid name
    """
    global _builtins
    _check_registry_name(name)
    if name in BASE_HELPERS or name in _FORBIDDEN_CALLS:
        raise ValueError(f'{name!r} is a built-in sandbox name and cannot be replaced')
    with _registry_lock:
        _extra_helpers[name] = fn
        _builtins = _build_builtins()


def unregister_helper(name: str) -> None:
    """Remove a helper added by :func:`register_helper`; unknown names are ignored.

    :param name: the name it was registered under
    """
    global _builtins
    with _registry_lock:
        if name in _extra_helpers:
            del _extra_helpers[name]
            _builtins = _build_builtins()


def register_service(name: str, fn: ServiceOperation) -> None:
    """Register the Python function a service task with ``operation_name == name`` calls.

    :param name: the operation name designers write in the BPMN
    :param fn: called as ``fn(task_data, **kwargs)``; trusted code, not sandboxed or time-limited
    :raises ValueError: for an empty name
    """
    if not isinstance(name, str) or not name:
        raise ValueError('a service operation needs a non-empty name')
    with _registry_lock:
        _services[name] = fn


def unregister_service(name: str) -> None:
    """Remove a service operation; unknown names are ignored.

    :param name: the name it was registered under
    """
    with _registry_lock:
        _services.pop(name, None)


# ---------------------------------------------------------------------------------------------------
# Running with a CPU-time limit
# ---------------------------------------------------------------------------------------------------

def _run_limited(code: types.CodeType, namespace: dict[str, Any], limit: float) -> Any:
    """Evaluate ``code`` in ``namespace`` and stop it after ``limit`` seconds of this thread's CPU time."""
    # settrace is per thread, so this works in Flask's worker threads, unlike signal.alarm.
    deadline = time.thread_time() + limit
    countdown = TRACE_CHECK_INTERVAL

    def tracer(frame: types.FrameType, event: str, arg: Any) -> Any:
        nonlocal countdown
        countdown -= 1
        if countdown <= 0:
            countdown = TRACE_CHECK_INTERVAL
            if time.thread_time() > deadline:
                raise _CpuLimitExceeded
        # The guards in this module are bounded by their own limits; line-tracing them too would make
        # every guarded call and operator several times slower.  Their calls still count down above.
        return None if frame.f_code.co_filename == _THIS_FILE else tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        # eval() runs exec-mode code objects too (returning None), so one path serves both.
        return eval(code, namespace)
    except RecursionError as exc:
        # Python's own recursion limit stopped it; say so as a refusal, not as an obscure script bug.
        raise ScriptRefused('递归层数过深 (函数调用自身次数过多)').with_traceback(exc.__traceback__) from None
    except _CpuLimitExceeded as exc:
        refused = ScriptRefused(f'脚本运行超时 (超过 {limit} 秒 CPU 时间)')
        # Keep the script's frames in the traceback so SpiffWorkflow can report the looping line.
        raise refused.with_traceback(exc.__traceback__) from None
    finally:
        # Restores pytest's, coverage's or a debugger's tracer, or an outer sandbox call's.
        sys.settrace(previous)


class SandboxedEnvironment(BasePythonScriptEngineEnvironment):  # type: ignore[misc]
    """Evaluates and executes restricted code with task data as globals.

    Same contract as SpiffWorkflow's ``TaskDataEnvironment``: :meth:`evaluate` reads task data as names;
    :meth:`execute` runs a script with the task data dict itself as globals, so assignments become task
    data, then strips everything that is not data.

    :param environment_globals: extra trusted names for every script (like ``TaskDataEnvironment``'s);
        prefer :func:`register_helper`
    :param cpu_time_limit: seconds of CPU time one evaluation or execution may use
    """

    def __init__(self, environment_globals: Mapping[str, Any] | None = None, *,
                 cpu_time_limit: float = DEFAULT_CPU_TIME_LIMIT) -> None:
        if not cpu_time_limit > 0:
            raise ValueError('cpu_time_limit must be positive')
        reserved = _INTERNAL_NAMES.intersection(environment_globals or {})
        if reserved:
            raise ValueError(f'environment_globals may not define {sorted(reserved)}')
        super().__init__(dict(environment_globals or {}))
        self.globals: dict[str, Any]
        self.cpu_time_limit = float(cpu_time_limit)

    def evaluate(self, expression: str, context: Mapping[str, Any],
                 external_context: Mapping[str, Any] | None = None) -> Any:
        """Evaluate an expression over task data.

        :param expression: e.g. ``x > 5 and y == 'red'``
        :param context: task data; read, not modified
        :param external_context: extra names (SpiffWorkflow passes data objects); task data wins on clashes
        :returns: the expression's value
        :raises ScriptRefused: refused by the policy, a guard or the CPU limit
        """
        code = compile_expression(expression)
        namespace = dict(self.globals)
        namespace.update(external_context or {})
        namespace.update(context)
        _refuse_reserved(namespace)
        namespace['__builtins__'] = _builtins
        result = _run_limited(code, namespace, self.cpu_time_limit)
        # The result becomes task data (a DMN output, a message payload) or a timer value.
        _check_data_size(result, '表达式的结果')
        return result

    def execute(self, script: str, context: dict[str, Any],
                external_context: Mapping[str, Any] | None = None) -> bool:
        """Run a script with ``context`` (the task data dict) as its globals.

        Names the script assigns become task data.  Afterwards ``__builtins__``, the sandbox's own names,
        environment globals, external-context names, and any callable or module are removed, so the task
        data stays serializable -- also when the script failed half-way.

        :param script: Python statements
        :param context: task data; modified in place
        :param external_context: extra names, removed again afterwards
        :returns: ``True``
        :raises ScriptRefused: refused by the policy, a guard or the CPU limit; a refused script has not
            run at all
        """
        external = external_context or {}
        self.check_for_overwrite(context, external)
        code = compile_script(script)
        _refuse_reserved(context)
        context.update(self.globals)
        context.update(external)
        context['__builtins__'] = _builtins
        try:
            _run_limited(code, context, self.cpu_time_limit)
        finally:
            self._remove_globals_and_functions_from_context(context, external)
        # Serializing ``[s] * 1000`` with a megabyte ``s`` would write a gigabyte after the script is done.
        _check_data_size(context, '脚本产生的任务数据')
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        """Call a registered service operation (see :func:`register_service`).

        :param context: task data
        :param kwargs: as SpiffWorkflow passes them; ``operation_name`` selects the operation
        :returns: whatever the operation returns
        :raises ScriptRefused: no operation is registered under that name
        """
        name = kwargs.pop('operation_name', None)
        operation = _services.get(name) if isinstance(name, str) else None
        if operation is None:
            raise ScriptRefused(f'未注册的服务操作：{name!r}')
        return operation(context, **kwargs)

    def check_for_overwrite(self, context: Mapping[str, Any], external_context: Mapping[str, Any]) -> None:
        """Refuse task data that would hide an environment global or external-context name.

        :raises ValueError: naming the clashing keys (SpiffWorkflow's behaviour)
        """
        clashes = set(self.globals).intersection(context) | set(external_context).intersection(context)
        if clashes:
            raise ValueError(f'任务数据与预定义名称冲突，请改名：{sorted(clashes)}')

    def _remove_globals_and_functions_from_context(
            self, context: dict[str, Any], external_context: Mapping[str, Any] | None = None) -> None:
        external = external_context or {}
        for key in list(context):
            value = context[key]
            if (key in _INTERNAL_NAMES or key in self.globals or key in external
                    or callable(value) or isinstance(value, types.ModuleType)):
                del context[key]


def _refuse_reserved(namespace: Mapping[str, Any]) -> None:
    # Task data shadowing a guard would replace the guard for this run.
    clashes = _INTERNAL_NAMES.intersection(namespace)
    if clashes:
        raise ScriptRefused(f'任务数据使用了沙箱保留名称：{sorted(clashes)}')


# ---------------------------------------------------------------------------------------------------
# Script engine
# ---------------------------------------------------------------------------------------------------

class SandboxedScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    """The script engine every Fengqiao workflow must be created with.

    Errors raised while a task runs are wrapped in ``WorkflowTaskException`` as SpiffWorkflow does, but
    the original exception is kept both as ``__cause__`` and as the ``exception`` attribute; use
    :func:`find_script_refused` to tell a sandbox refusal from an ordinary script bug.

    :param environment: a :class:`SandboxedEnvironment`; one with ``cpu_time_limit`` is made if omitted
    :param cpu_time_limit: seconds of CPU time per evaluation/execution when ``environment`` is omitted
    """

    def __init__(self, environment: SandboxedEnvironment | None = None, *,
                 cpu_time_limit: float = DEFAULT_CPU_TIME_LIMIT) -> None:
        if environment is None:
            environment = SandboxedEnvironment(cpu_time_limit=cpu_time_limit)
        elif not isinstance(environment, SandboxedEnvironment):
            raise TypeError('SandboxedScriptEngine needs a SandboxedEnvironment')
        super().__init__(environment)
        self.environment: SandboxedEnvironment

    def validate(self, expression: str) -> None:
        """Compile an expression under the sandbox policy without running it.

        :raises ScriptSyntaxError: it does not parse (also a ``SyntaxError``, as SpiffWorkflow's DMN expects)
        :raises ScriptRefused: the policy refuses it; the message names the problem in Chinese
        """
        check_expression(expression)

    def evaluate(self, task: Any, expression: str, external_context: Mapping[str, Any] | None = None) -> Any:
        """Evaluate an expression over ``task.data``.

        :raises WorkflowTaskException: wrapping any failure; see :func:`find_script_refused`
        """
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except SpiffWorkflowException as exc:
            exc.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as exc:
            wrapped = WorkflowTaskException(
                f"Error evaluating expression '{expression}': {_describe(exc)}", task=task, exception=exc)
            wrapped.exception = exc
            raise wrapped from exc

    def execute(self, task: Any, script: str, external_context: Mapping[str, Any] | None = None) -> bool:
        """Execute a script with ``task.data`` as its globals.

        :raises WorkflowTaskException: wrapping any failure; see :func:`find_script_refused`
        """
        try:
            return self.environment.execute(script, task.data, external_context or {})
        except SpiffWorkflowException:
            raise
        except Exception as exc:
            raise self._wrap(task, script, exc) from exc

    def call_service(self, task: Any, **kwargs: Any) -> Any:
        """Call a registered service operation for a service task.

        :raises WorkflowTaskException: wrapping any failure, including an unknown operation name
        """
        # Overridden because SpiffWorkflow 3.2.0's version refers to an undefined ``script`` on failure.
        try:
            return self.environment.call_service(task.data, **kwargs)
        except SpiffWorkflowException:
            raise
        except Exception as exc:
            raise self._wrap(task, '', exc) from exc

    def _wrap(self, task: Any, script: str, exc: Exception) -> Any:
        line_number = _script_line_number(exc)
        lines = script.splitlines()
        error_line = lines[line_number - 1] if 0 < line_number <= len(lines) else ''
        wrapped = WorkflowTaskException(
            _describe(exc), task=task, exception=exc, line_number=line_number, error_line=error_line)
        wrapped.exception = exc
        return wrapped


#: Longest error text taken from a script's exception; the rest is cut off.
MAX_ERROR_TEXT: Final = 500


def _describe(exc: BaseException) -> str:
    # ``raise ValueError([s] * 1000)`` would make str(exc) build a gigabyte here, outside the CPU limit.
    if _text_size(exc.args, MAX_ERROR_TEXT * 4) > MAX_ERROR_TEXT * 4:
        return f'{exc.__class__.__name__}: (错误信息过长，已省略)'
    text = str(exc)
    if len(text) > MAX_ERROR_TEXT:
        text = text[:MAX_ERROR_TEXT] + '…'
    return f'{exc.__class__.__name__}: {text}'


def _script_line_number(exc: BaseException) -> int:
    """The script line an error belongs to, or 0 if unknown."""
    if isinstance(exc, SyntaxError):
        return exc.lineno or 0
    if isinstance(exc, ScriptRefused):
        match = _LINE_PREFIX.search(exc.message)
        if match:
            return int(match.group(1))
    line_number = 0
    tb = exc.__traceback__
    while tb is not None:
        # The innermost sandbox frame wins: a helper's own frames have other file names.
        if tb.tb_frame.f_code.co_filename == _FILENAME:
            line_number = tb.tb_lineno
        tb = tb.tb_next
    return line_number


def find_script_refused(exc: BaseException) -> ScriptRefused | None:
    """Find the sandbox refusal behind an exception, however SpiffWorkflow wrapped it.

    Follows the ``exception`` attribute this engine sets on ``WorkflowTaskException``, ``__cause__`` and
    ``__context__``.

    :param exc: typically a ``WorkflowTaskException`` from ``do_engine_steps()`` or ``run()``
    :returns: the :class:`ScriptRefused`, or ``None`` if the failure was an ordinary script error
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ScriptRefused):
            return current
        for linked in (getattr(current, 'exception', None), current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)
    return None
