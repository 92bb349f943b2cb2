"""A fuzz pass over BPMN upload: whatever the bytes, :func:`engine.definitions.validate` answers with a report and
:func:`engine.definitions.deploy` either stores a clean version or refuses with that report, stores nothing and
raises nothing else, each within a time bound.

Cases: malformed XML (truncated, random bytes, wrong encodings), sizes over the limit, deep and wide trees, entity
and DTD attacks (billion laughs, XXE, parameter entities, external DTDs), and ~100 seeded mutations of the
shipped diagrams (elements and attributes deleted, duplicated, or given other values).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from lxml import etree
from sqlalchemy.orm import Session

from engine.definitions import deploy_with_report, validate
from engine.errors import DeploymentRejected
from engine.lint import ValidationReport
from engine.models.audit import AuditEvent
from engine.models.definitions import ProcessDefinition
from engine.models.drafts import AcceptedWarning
from engine.specs import MAX_SOURCE_BYTES

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / 'bpmn').rglob('*.bpmn')) + sorted((ROOT / 'bpmn').rglob('*.dmn'))
DEMO = (ROOT / 'tests/fixtures/bpmn/demo_intake.bpmn').read_bytes()
#: Seconds one validation or deployment may take; generous, as the suite shares the machine with CI runs.
TIME_BOUND = 10.0
MUTATIONS = 100

BPMN_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
             '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">')
BPMN_TAIL = '</bpmn:definitions>'


def _laughs() -> str:
    entities = ['<!ENTITY lol "lol">', '<!ENTITY lol1 "' + '&lol;' * 10 + '">']
    entities += [f'<!ENTITY lol{i} "' + f'&lol{i - 1};' * 10 + '">' for i in range(2, 10)]
    return (f'<?xml version="1.0"?>\n<!DOCTYPE definitions [{"".join(entities)}]>\n'
            + BPMN_HEAD.split('\n', 1)[1].replace('targetNamespace="x"', 'targetNamespace="x" name="&lol9;"')
            + '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s" /></bpmn:process>' + BPMN_TAIL)


def _deep(depth: int) -> str:
    return BPMN_HEAD + '<bpmn:process id="p" isExecutable="true">' + '<bpmn:subProcess>' * depth \
        + '</bpmn:subProcess>' * depth + '</bpmn:process>' + BPMN_TAIL


def _wide(count: int) -> str:
    """A flat process of ``count`` tasks chained by flows: large, but under the size limit."""
    nodes = ''.join(f'<bpmn:task id="t{i}" />' for i in range(count))
    flows = ''.join(f'<bpmn:sequenceFlow id="f{i}" sourceRef="t{i}" targetRef="t{i + 1}" />' for i in range(count - 1))
    return BPMN_HEAD + f'<bpmn:process id="p" isExecutable="true">{nodes}{flows}</bpmn:process>' + BPMN_TAIL


HOSTILE: dict[str, Callable[[], bytes | str]] = {
    'empty': lambda: b'',
    'blank': lambda: b' \n\t ',
    'random bytes': lambda: random.Random(7).randbytes(4096),
    'nul bytes': lambda: b'\x00' * 64,
    'not xml': lambda: 'this is not xml',
    'truncated demo': lambda: DEMO[: len(DEMO) // 2],
    'demo cut inside a tag': lambda: DEMO[: DEMO.index(b'<bpmn:userTask') + 9],
    'bad utf-8': lambda: DEMO.replace('（演示）'.encode(), b'\xff\xfe\xc3\x28'),
    'declared ebcdic': lambda: DEMO.replace(b'encoding="UTF-8"', b'encoding="ebcdic-cp-us"', 1),
    'declared unknown encoding': lambda: DEMO.replace(b'encoding="UTF-8"', b'encoding="x-nonsense"', 1),
    'over the size limit': lambda: DEMO + b'<!--' + b'x' * MAX_SOURCE_BYTES + b'-->',
    'over the size limit as text': lambda: ' ' * (MAX_SOURCE_BYTES + 1),
    'exactly at the limit, whitespace': lambda: b' ' * MAX_SOURCE_BYTES,
    'deep 10k': lambda: _deep(10_000),
    'deep 300': lambda: _deep(300),
    'wide 20k tasks': lambda: _wide(20_000),
    'one huge attribute': lambda: BPMN_HEAD + '<bpmn:process id="p" name="' + '案' * 1_500_000
    + '" isExecutable="true" />' + BPMN_TAIL,
    'many attributes': lambda: BPMN_HEAD + '<bpmn:process id="p" isExecutable="true" '
    + ' '.join(f'a{i}="x"' for i in range(50_000)) + ' />' + BPMN_TAIL,
    'many namespaces': lambda: BPMN_HEAD + '<bpmn:process id="p" isExecutable="true" '
    + ' '.join(f'xmlns:n{i}="urn:{i}"' for i in range(20_000)) + ' />' + BPMN_TAIL,
    'billion laughs': _laughs,
    'xxe file': lambda: '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    + BPMN_HEAD.split('\n', 1)[1] + '<bpmn:process id="p" name="&x;" isExecutable="true" />' + BPMN_TAIL,
    'xxe network': lambda: '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>'
    + BPMN_HEAD.split('\n', 1)[1] + '<bpmn:process id="p" name="&x;" isExecutable="true" />' + BPMN_TAIL,
    'parameter entity': lambda: '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
    + BPMN_HEAD.split('\n', 1)[1] + BPMN_TAIL,
    'external dtd': lambda: '<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd">'
    + BPMN_HEAD.split('\n', 1)[1] + BPMN_TAIL,
    'doctype in utf-16': lambda: ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE d [<!ENTITY x "y">]>'
                                  + BPMN_HEAD.split('\n', 1)[1] + BPMN_TAIL).encode('utf-16'),
    'undefined entity': lambda: BPMN_HEAD + '<bpmn:process id="p" name="&undefined;" isExecutable="true" />'
    + BPMN_TAIL,
    'xinclude': lambda: BPMN_HEAD.replace('id="d"', 'id="d" xmlns:xi="http://www.w3.org/2001/XInclude"')
    + '<xi:include href="file:///etc/passwd" parse="text" />' + BPMN_TAIL,
    'processing instruction and cdata': lambda: BPMN_HEAD + '<?evil run="x"?><![CDATA[<bpmn:process/>]]>'
    + BPMN_TAIL,
    'wrong root namespace': lambda: DEMO.replace(b'http://www.omg.org/spec/BPMN/20100524/MODEL', b'urn:other'),
    'only a declaration': lambda: '<?xml version="1.0"?>',
    'two roots': lambda: DEMO + DEMO,
}


def _count(session: Session) -> tuple[int, ...]:
    return tuple(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0
                 for model in (ProcessDefinition, AcceptedWarning, AuditEvent))


def _timed_validate(session: Session, source: bytes | str) -> ValidationReport:
    started = time.perf_counter()
    report = validate(session, source, filename='fuzz.bpmn')
    elapsed = time.perf_counter() - started
    assert elapsed < TIME_BOUND, f'validation took {elapsed:.1f} s'
    assert isinstance(report, ValidationReport)
    return report


def _deploy_outcome(session: Session, source: bytes | str, report: ValidationReport) -> str:
    """Deploy (warnings accepted): a clean report stores one version; any error stores nothing."""
    before = _count(session)
    started = time.perf_counter()
    try:
        deployment = deploy_with_report(session, source, actor=None, filename='fuzz.bpmn', accept_warnings=True)
    except DeploymentRejected as rejected:
        assert report.errors, 'refused although validation found no error'
        assert rejected.report is not None and rejected.report.errors
        session.rollback()
        assert _count(session) == before
        return 'refused'
    finally:
        assert time.perf_counter() - started < TIME_BOUND
    assert not report.errors, report.errors
    session.commit()
    assert _count(session)[0] == before[0] + (1 if deployment.created else 0)
    return 'stored'


@pytest.mark.parametrize('name', list(HOSTILE))
def test_hostile_upload_is_refused_with_a_report(session: Session, name: str) -> None:
    source = HOSTILE[name]()
    report = _timed_validate(session, source)
    assert report.errors and not report.valid, name
    assert all(finding.message for finding in report.errors)
    # Nothing from a file or an entity reached the report.
    assert 'root:' not in str(report) and 'lollol' not in str(report)
    assert _deploy_outcome(session, source, report) == 'refused'


@pytest.mark.parametrize('encoding', ['UTF-16', 'UTF-32', 'GB18030'])
def test_diagram_in_another_encoding_is_stored_as_utf8(session: Session, encoding: str) -> None:
    # Validation reads the declared encoding; deploying used to fail decoding the bytes as UTF-8 (a 500).
    source = DEMO.decode('utf-8').replace('encoding="UTF-8"', f'encoding="{encoding}"', 1).encode(encoding)
    report = _timed_validate(session, source)
    assert not report.errors
    assert _deploy_outcome(session, source, report) == 'stored'
    stored = session.scalars(sa.select(ProcessDefinition)).one()
    assert stored.source.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert '案件登记与审核（演示）' in stored.source
    assert not validate(session, stored.source.encode('utf-8')).errors


def _mutate(tree: etree._ElementTree, rng: random.Random) -> str:
    """One to three random edits: delete or duplicate an element, delete an attribute, copy an attribute's value
    (ids collide, references dangle), or put nonsense in an attribute or a text."""
    elements = [e for e in tree.iter() if isinstance(e.tag, str)]
    what = []
    for _ in range(rng.randint(1, 3)):
        element = rng.choice(elements[1:])
        parent = element.getparent()
        kind = rng.choice(['delete', 'duplicate', 'drop-attribute', 'copy-attribute', 'garble-attribute',
                           'garble-text'])
        if kind == 'delete' and parent is not None:
            parent.remove(element)
        elif kind == 'duplicate' and parent is not None:
            parent.insert(parent.index(element), etree.fromstring(etree.tostring(element)))
        elif kind == 'drop-attribute' and element.attrib:
            del element.attrib[rng.choice(sorted(element.attrib))]
        elif kind == 'copy-attribute' and element.attrib:
            other = rng.choice(elements)
            name = rng.choice(sorted(element.attrib))
            other.set(name, element.get(name) or '')
        elif kind == 'garble-attribute' and element.attrib:
            element.set(rng.choice(sorted(element.attrib)),
                        rng.choice(['', ' ', '-1', '1e400', '${', 'P', '9' * 40, '\u202e', 'x' * 5000]))
        else:
            element.text = rng.choice(['', '1/0', 'import os', '((((', '${x}', 'R/P1D', '\u0085'])
        what.append(kind)
    return ' '.join(what)


@pytest.mark.parametrize('seed', range(MUTATIONS))
def test_mutated_shipped_diagram_is_reported_or_deployed_cleanly(session: Session, seed: int) -> None:
    path = SHIPPED[seed % len(SHIPPED)]
    rng = random.Random(seed)
    tree = etree.parse(str(path))
    edits = _mutate(tree, rng)
    source = etree.tostring(tree, xml_declaration=True, encoding='UTF-8')
    report = _timed_validate(session, source)
    try:
        _deploy_outcome(session, source, report)
    except AssertionError as failure:
        raise AssertionError(f'{path.name} after {edits}: {failure}') from failure
