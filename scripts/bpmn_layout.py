#!/usr/bin/env python3
"""Add (or replace) the diagram interchange of BPMN files: a readable left-to-right layered layout.

Usage::

    python scripts/bpmn_layout.py bpmn/corrections/*.bpmn     # rewrite the files in place
    python scripts/bpmn_layout.py --check bpmn/**/*.bpmn       # exit 1 if a file's layout is out of date

The semantic part of each file is left exactly as written; every ``bpmndi:BPMNDiagram`` is replaced by
one computed here, so a file written by hand (or by a script) opens in bpmn-js and Camunda Modeler with
every element drawn. The result is deterministic: running it twice changes nothing.

Layout rules:

* columns from the start events rightwards by longest path; back edges (loops) are found by a depth-first
  walk and do not push their target right;
* lanes are horizontal bands in document order inside their pool (a participant is added for a process
  that has lanes but none); within a lane each node takes the row of its first predecessor, or the next
  free row below it, so the main path runs straight and branches step down;
* boundary events sit on their host's bottom edge; their targets go one row below the host;
* expanded subprocesses are laid out recursively and take the space their content needs;
* edges are orthogonal and turn in the gaps between columns: a branch going down turns right after its
  source and runs along its own (lower) row, one coming back up runs along its row and turns just before
  its target; loops run back through the gap above their row and enter from the left; boundary flows leave downwards.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

BPMN = 'http://www.omg.org/spec/BPMN/20100524/MODEL'
BPMNDI = 'http://www.omg.org/spec/BPMN/20100524/DI'
DC = 'http://www.omg.org/spec/DD/20100524/DC'
DI = 'http://www.omg.org/spec/DD/20100524/DI'
NS = {'bpmn': BPMN, 'bpmndi': BPMNDI, 'dc': DC, 'di': DI}

Element = Any  # lxml ships no type information

#: horizontal space between columns, vertical space between rows
COLUMN_GAP = 60
ROW_GAP = 50
#: pool header (the vertical name strip) and lane header widths
POOL_HEADER = 30
LANE_HEADER = 30
#: margin inside a lane band and inside an expanded subprocess
LANE_PAD = 30
SUBPROCESS_HEADER = 20
ORIGIN_X = 150
ORIGIN_Y = 80
#: external label box of events and gateways
LABEL_WIDTH = 90
LABEL_LINE = 14

_EVENTS = {'startEvent', 'endEvent', 'intermediateCatchEvent', 'intermediateThrowEvent', 'boundaryEvent'}
_GATEWAYS = {'exclusiveGateway', 'parallelGateway', 'inclusiveGateway', 'eventBasedGateway', 'complexGateway'}
_ACTIVITIES = {'task', 'userTask', 'serviceTask', 'scriptTask', 'businessRuleTask', 'manualTask', 'sendTask',
               'receiveTask', 'callActivity'}
_CONTAINERS = {'subProcess', 'transaction', 'adHocSubProcess'}
_FLOW_NODES = _EVENTS | _GATEWAYS | _ACTIVITIES | _CONTAINERS


def _q(ns: str, local: str) -> str:
    return f'{{{ns}}}{local}'


def _local(element: Element) -> str:
    if not isinstance(element.tag, str):
        return ''
    qname = etree.QName(element)
    return qname.localname if qname.namespace == BPMN else ''


# -- geometry --------------------------------------------------------------------------------------------

@dataclass
class Box:
    """A shape's bounds."""

    x: float = 0
    y: float = 0
    w: float = 0
    h: float = 0

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass
class Node:
    """A flow node being placed."""

    element: Element
    kind: str
    box: Box
    lane: int = 0
    column: int = 0
    row: int = 0
    #: laid-out content of an expanded subprocess
    inner: Layout | None = None
    boundaries: list[Element] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.element.get('id'))


@dataclass
class Layout:
    """Placed nodes of one container (process or subprocess), positioned relative to (0, 0)."""

    nodes: dict[str, Node]
    flows: list[Element]
    boundary_boxes: dict[str, Box]
    lane_bands: list[tuple[str | None, float, float]]
    width: float
    height: float

    def shift(self, dx: float, dy: float) -> None:
        """Move everything by (dx, dy), nested content included."""
        for node in self.nodes.values():
            node.box.x += dx
            node.box.y += dy
            if node.inner is not None:
                node.inner.shift(dx, dy)
        for box in self.boundary_boxes.values():
            box.x += dx
            box.y += dy
        self.lane_bands = [(lane, top + dy, height) for lane, top, height in self.lane_bands]


def _size(kind: str) -> tuple[float, float]:
    if kind in _EVENTS:
        return 36, 36
    if kind in _GATEWAYS:
        return 50, 50
    return 100, 80


# -- layering --------------------------------------------------------------------------------------------

def _graph(nodes: dict[str, Node], flows: list[Element], host_of: dict[str, str]) -> dict[str, list[str]]:
    """Successors by node id; a boundary event's flows count as its host's."""
    succ: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for flow in flows:
        source, target = flow.get('sourceRef'), flow.get('targetRef')
        source = host_of.get(source, source)
        if source in succ and target in nodes and target not in succ[source]:
            succ[source].append(target)
    return succ


def _back_edges(order: list[str], succ: dict[str, list[str]], preds: dict[str, list[str]]) -> set[tuple[str, str]]:
    """Edges that close a cycle, found by an iterative depth-first walk from the sources in document order."""
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    roots = [n for n in order if not preds[n]] + order
    for root in roots:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, index = stack[-1]
            if index < len(succ[node]):
                stack[-1] = (node, index + 1)
                target = succ[node][index]
                if state.get(target) == 1:
                    back.add((node, target))
                elif target not in state:
                    state[target] = 1
                    stack.append((target, 0))
            else:
                state[node] = 2
                stack.pop()
    return back


def _columns(order: list[str], succ: dict[str, list[str]], back: set[tuple[str, str]]) -> dict[str, int]:
    """Longest-path column of each node over the forward edges (Kahn's order)."""
    indegree = dict.fromkeys(order, 0)
    for source in order:
        for target in succ[source]:
            if (source, target) not in back:
                indegree[target] += 1
    column = dict.fromkeys(order, 0)
    ready = [n for n in order if indegree[n] == 0]
    while ready:
        node = ready.pop(0)
        for target in succ[node]:
            if (node, target) in back:
                continue
            column[target] = max(column[target], column[node] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return column


# -- one container ---------------------------------------------------------------------------------------

def _lanes(container: Element) -> list[tuple[str, list[str]]]:
    """Leaf lanes of the container, in document order, with their node ids."""
    result: list[tuple[str, list[str]]] = []

    def walk(lane_set: Element) -> None:
        for lane in lane_set.iterfind('bpmn:lane', NS):
            child = lane.find('bpmn:childLaneSet', NS)
            if child is not None and child.find('bpmn:lane', NS) is not None:
                walk(child)
            else:
                refs = [(ref.text or '').strip() for ref in lane.iterfind('bpmn:flowNodeRef', NS)]
                result.append((str(lane.get('id')), refs))

    for lane_set in container.iterfind('bpmn:laneSet', NS):
        walk(lane_set)
    return result


def layout_container(container: Element) -> Layout:
    """Place the flow nodes of a process or subprocess; coordinates relative to the container's corner."""
    nodes: dict[str, Node] = {}
    boundaries: list[Element] = []
    for child in container:
        kind = _local(child)
        if kind == 'boundaryEvent':
            boundaries.append(child)
        elif kind in _FLOW_NODES and child.get('id'):
            inner = layout_container(child) if kind in _CONTAINERS and _expanded(child) else None
            width, height = _size(kind)
            if inner is not None:
                # The inner layout carries its own margins; the header leaves room for the name.
                width = max(width, inner.width)
                height = max(height, inner.height + SUBPROCESS_HEADER)
            nodes[str(child.get('id'))] = Node(child, kind, Box(0, 0, width, height), inner=inner)
    host_of = {str(b.get('id')): str(b.get('attachedToRef')) for b in boundaries}
    for boundary in boundaries:
        host = nodes.get(str(boundary.get('attachedToRef')))
        if host is not None:
            host.boundaries.append(boundary)
    flows = list(container.iterfind('bpmn:sequenceFlow', NS))
    order = list(nodes)
    succ = _graph(nodes, flows, host_of)
    preds: dict[str, list[str]] = {n: [] for n in order}
    for source in order:
        for target in succ[source]:
            preds[target].append(source)
    back = _back_edges(order, succ, preds)
    columns = _columns(order, succ, back)
    lanes = _lanes(container)
    lane_of = {ref: index for index, (_, refs) in enumerate(lanes) for ref in refs}
    for node_id, node in nodes.items():
        node.column = columns[node_id]
        node.lane = lane_of.get(node_id, 0)
    boundary_targets = {str(f.get('targetRef')): host_of[str(f.get('sourceRef'))]
                        for f in flows if f.get('sourceRef') in host_of}
    _assign_rows(nodes, order, succ, preds, back, boundary_targets)
    layout = _place(nodes, flows, lanes)
    for node in nodes.values():
        for index, boundary in enumerate(node.boundaries):
            # Along the bottom edge from the right, so the host's name stays readable.
            x = node.box.right - 18 - 20 - index * 46
            layout.boundary_boxes[str(boundary.get('id'))] = Box(max(node.box.x, x), node.box.bottom - 18, 36, 36)
    return layout


def _expanded(element: Element) -> bool:
    return any(_local(child) in _FLOW_NODES for child in element)


def _assign_rows(nodes: dict[str, Node], order: list[str], succ: dict[str, list[str]],
                 preds: dict[str, list[str]], back: set[tuple[str, str]],
                 boundary_targets: dict[str, str]) -> None:
    """Give each node a row inside its lane: its main predecessor's row, else the next free one below.

    Nodes are placed depth first, first outgoing flow first, boundary branches last, so the main path is
    one straight row and each branch keeps one row for as long as it runs on its own.
    """
    taken: set[tuple[int, int, int]] = set()  # (lane, column, row)
    placed: set[str] = set()
    for node_id in _placement_order(order, succ, preds, back, boundary_targets):
        node = nodes[node_id]
        forward = [p for p in preds[node_id] if (p, node_id) not in back and p in placed]
        wanted = 0
        host_id = boundary_targets.get(node_id)
        if host_id is not None and host_id in placed:
            host = nodes[host_id]
            wanted = host.row + 1 if host.lane == node.lane else 0
        elif forward:
            same_lane = [nodes[p] for p in forward if nodes[p].lane == node.lane]
            if same_lane:
                wanted = min(p.row for p in same_lane)
        columns = [nodes[n].column for n in _chain(node_id, succ, preds, back) if nodes[n].lane == node.lane]
        # A flow from a predecessor several columns back runs along the row: keep those cells clear too.
        reach = min((nodes[p].column for p in forward if nodes[p].lane == node.lane), default=node.column)
        columns += range(reach + 1, node.column)
        row = wanted
        while any((node.lane, column, row) in taken for column in columns):
            row += 1
        node.row = row
        taken.update((node.lane, column, row) for column in [node.column, *range(reach + 1, node.column)])
        placed.add(node_id)


def _placement_order(order: list[str], succ: dict[str, list[str]], preds: dict[str, list[str]],
                     back: set[tuple[str, str]], boundary_targets: dict[str, str]) -> list[str]:
    result: list[str] = []
    seen: set[str] = set()
    deferred: list[str] = []

    def visit(root: str) -> None:
        stack = [root]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            result.append(node)
            plain = [t for t in succ[node] if (node, t) not in back and boundary_targets.get(t) != node]
            deferred.extend(t for t in succ[node] if boundary_targets.get(t) == node)
            stack.extend(reversed(plain))

    for root in [n for n in order if not preds[n]] + order:
        visit(root)
        while deferred:
            visit(deferred.pop(0))
    return result


def _chain(node_id: str, succ: dict[str, list[str]], preds: dict[str, list[str]],
           back: set[tuple[str, str]]) -> list[str]:
    """The node and the run of nodes after it that have no other way in or out (a branch's body)."""
    chain = [node_id]
    current = node_id
    while True:
        forward = [t for t in succ[current] if (current, t) not in back]
        if len(forward) != 1 or forward[0] in chain:
            return chain
        following = forward[0]
        if len([p for p in preds[following] if (p, following) not in back]) != 1:
            return chain
        chain.append(following)
        current = following


def _place(nodes: dict[str, Node], flows: list[Element], lanes: list[tuple[str, list[str]]]) -> Layout:
    """Turn (lane, column, row) into coordinates."""
    column_count = max((n.column for n in nodes.values()), default=0) + 1
    widths = [0.0] * column_count
    for node in nodes.values():
        widths[node.column] = max(widths[node.column], node.box.w)
    lefts: list[float] = []
    x = LANE_PAD + (LANE_HEADER if lanes else 0)
    for width in widths:
        lefts.append(x)
        x += width + COLUMN_GAP
    total_width = x - COLUMN_GAP + LANE_PAD

    lane_count = max(len(lanes), 1)
    row_heights: list[dict[int, float]] = [{} for _ in range(lane_count)]
    for node in nodes.values():
        heights = row_heights[node.lane]
        heights[node.row] = max(heights.get(node.row, 0.0), node.box.h)
    bands: list[tuple[str | None, float, float]] = []
    row_tops: list[dict[int, float]] = []
    y = 0.0
    for lane_index in range(lane_count):
        heights = row_heights[lane_index]
        top = y
        y += LANE_PAD
        tops: dict[int, float] = {}
        for row in range(max(heights, default=0) + 1):
            height = max(heights.get(row, 0.0), 80.0)
            tops[row] = y
            y += height + ROW_GAP
        y += LANE_PAD - ROW_GAP
        bands.append((lanes[lane_index][0] if lanes else None, top, y - top))
        row_tops.append(tops)
    for node in nodes.values():
        heights = row_heights[node.lane]
        row_height = max(heights.get(node.row, 0.0), 80.0)
        node.box.x = lefts[node.column] + (widths[node.column] - node.box.w) / 2
        node.box.y = row_tops[node.lane][node.row] + (row_height - node.box.h) / 2
        if node.inner is not None:
            node.inner.shift(node.box.x, node.box.y + SUBPROCESS_HEADER)
    return Layout(nodes, flows, {}, bands, total_width, y)


# -- edges -----------------------------------------------------------------------------------------------

Point = tuple[float, float]


def route(source: Box, target: Box, *, from_boundary: bool) -> list[Point]:
    """Orthogonal waypoints from ``source`` to ``target``."""
    if from_boundary:
        start = (source.cx, source.bottom)
        if target.x > source.cx:
            if target.cy > source.bottom:
                return [start, (source.cx, target.cy), (target.x, target.cy)]
            channel = source.bottom + 20
            return [start, (source.cx, channel), (target.cx, channel), (target.cx, target.bottom)]
        channel = max(source.bottom, target.bottom) + 25
        return [start, (source.cx, channel), (target.cx, channel), (target.cx, target.bottom)]
    same_row = abs(source.cy - target.cy) < 1
    if target.x >= source.right - 1:  # forward
        if same_row:
            return [(source.right, source.cy), (target.x, target.cy)]
        # Turn in a column gap and travel along the lower of the two rows, which is the branch's own.
        bend = source.right + COLUMN_GAP / 2 if target.cy > source.cy else target.x - COLUMN_GAP / 2
        return [(source.right, source.cy), (bend, source.cy), (bend, target.cy), (target.x, target.cy)]
    # Backwards: up into the gap above the source's row, back to the gap before the target, in from the left.
    channel = source.y - ROW_GAP / 2
    gap = target.x - COLUMN_GAP / 2
    return [(source.cx, source.y), (source.cx, channel), (gap, channel), (gap, target.cy), (target.x, target.cy)]


# -- the document ----------------------------------------------------------------------------------------

def _ensure_namespaces(root: Element) -> Element:
    """A root element declaring bpmndi, dc and di (lxml cannot add declarations in place)."""
    if all(root.nsmap.get(p) == uri for p, uri in (('bpmndi', BPMNDI), ('dc', DC), ('di', DI))):
        return root
    nsmap = {**root.nsmap, 'bpmndi': BPMNDI, 'dc': DC, 'di': DI}
    new_root = etree.Element(root.tag, nsmap=nsmap)
    new_root.text = root.text
    for name, value in root.attrib.items():
        new_root.set(name, value)
    for child in list(root):
        new_root.append(child)
    return new_root


def _ensure_collaboration(root: Element) -> Element | None:
    """The collaboration to draw; one is added when a process has lanes but no pool."""
    processes = root.findall('bpmn:process', NS)
    collaboration = root.find('bpmn:collaboration', NS)
    referenced = {p.get('processRef') for p in root.iterfind('bpmn:collaboration/bpmn:participant', NS)}
    missing = [p for p in processes if p.get('id') not in referenced
               and (p.find('bpmn:laneSet', NS) is not None or collaboration is not None)]
    if not missing:
        return collaboration
    if collaboration is None:
        collaboration = etree.Element(_q(BPMN, 'collaboration'))
        collaboration.set('id', f'{processes[0].get("id")}_collaboration')
        collaboration.tail = '\n  '
        root.insert(list(root).index(processes[0]), collaboration)
    for process in missing:
        participant = etree.SubElement(collaboration, _q(BPMN, 'participant'))
        participant.set('id', f'{process.get("id")}_participant')
        if process.get('name'):
            participant.set('name', str(process.get('name')))
        participant.set('processRef', str(process.get('id')))
    return collaboration


def _shape(plane: Element, element_id: str, box: Box, **attrs: str) -> Element:
    shape = etree.SubElement(plane, _q(BPMNDI, 'BPMNShape'), id=f'{element_id}_di', bpmnElement=element_id)
    for name, value in attrs.items():
        shape.set(name, value)
    _bounds(shape, box)
    return shape


def _bounds(parent: Element, box: Box) -> None:
    etree.SubElement(parent, _q(DC, 'Bounds'), x=_num(box.x), y=_num(box.y), width=_num(box.w),
                     height=_num(box.h))


def _num(value: float) -> str:
    return str(int(round(value)))


def _label(shape: Element, box: Box, text: str | None) -> None:
    if not text:
        return
    lines = max(1, min(4, (len(text) * 12) // LABEL_WIDTH + 1))
    label = etree.SubElement(shape, _q(BPMNDI, 'BPMNLabel'))
    _bounds(label, Box(box.cx - LABEL_WIDTH / 2, box.bottom + 6, LABEL_WIDTH, lines * LABEL_LINE))


def _draw(plane: Element, layout: Layout) -> dict[str, Box]:
    """Shapes and edges of one laid-out container (and its subprocesses); returns every box drawn."""
    boxes: dict[str, Box] = {}
    kinds: dict[str, str] = {}
    for node in layout.nodes.values():
        attrs: dict[str, str] = {}
        if node.kind in ('exclusiveGateway', 'inclusiveGateway'):
            attrs['isMarkerVisible'] = 'true'
        if node.inner is not None:
            attrs['isExpanded'] = 'true'
        shape = _shape(plane, node.id, node.box, **attrs)
        if node.kind in _EVENTS or node.kind in _GATEWAYS:
            _label(shape, node.box, node.element.get('name'))
        boxes[node.id] = node.box
        kinds[node.id] = node.kind
        if node.inner is not None:
            boxes.update(_draw(plane, node.inner))
        for boundary in node.boundaries:
            box = layout.boundary_boxes[str(boundary.get('id'))]
            shape = _shape(plane, str(boundary.get('id')), box)
            _label(shape, Box(box.x + 30, box.y, box.w, box.h), boundary.get('name'))
            boxes[str(boundary.get('id'))] = box
            kinds[str(boundary.get('id'))] = 'boundaryEvent'
    for flow in layout.flows:
        source, target = str(flow.get('sourceRef')), str(flow.get('targetRef'))
        if source not in boxes or target not in boxes:
            continue
        points = route(boxes[source], boxes[target], from_boundary=kinds[source] == 'boundaryEvent')
        edge = etree.SubElement(plane, _q(BPMNDI, 'BPMNEdge'), id=f'{flow.get("id")}_di',
                                bpmnElement=str(flow.get('id')))
        for x, y in points:
            etree.SubElement(edge, _q(DI, 'waypoint'), x=_num(x), y=_num(y))
        if flow.get('name'):
            label = etree.SubElement(edge, _q(BPMNDI, 'BPMNLabel'))
            (x1, y1), (x2, y2) = points[0], points[1]
            if len(points) > 2 and points[1][0] == points[2][0]:
                # Beside the turn, where the branch is already apart from its siblings.
                x2, y2 = points[2]
                _bounds(label, Box(x1 + (x2 - x1) + 4, y1 + (6 if y2 > y1 else -20), LABEL_WIDTH - 20, LABEL_LINE))
            else:
                _bounds(label, Box(min(x1, x2) + 4, min(y1, y2) - 18, LABEL_WIDTH - 20, LABEL_LINE))
    return boxes


def apply_layout(root: Element) -> Element:
    """Return ``root`` (or a copy with the DI namespaces declared) with fresh diagram interchange."""
    root = _ensure_namespaces(root)
    for diagram in root.findall('bpmndi:BPMNDiagram', NS):
        root.remove(diagram)
    collaboration = _ensure_collaboration(root)
    processes = {str(p.get('id')): p for p in root.findall('bpmn:process', NS)}
    diagram = etree.SubElement(root, _q(BPMNDI, 'BPMNDiagram'))
    plane = etree.SubElement(diagram, _q(BPMNDI, 'BPMNPlane'))
    if collaboration is None:
        (process_id, process), = processes.items() if len(processes) == 1 else ((None, None),)
        if process is None:
            raise ValueError('several processes without a collaboration: add a participant for each')
        diagram.set('id', f'{process_id}_diagram')
        plane.set('id', f'{process_id}_plane')
        plane.set('bpmnElement', str(process_id))
        layout = layout_container(process)
        layout.shift(ORIGIN_X, ORIGIN_Y)
        _draw(plane, layout)
    else:
        collaboration_id = str(collaboration.get('id'))
        diagram.set('id', f'{collaboration_id}_diagram')
        plane.set('id', f'{collaboration_id}_plane')
        plane.set('bpmnElement', collaboration_id)
        _draw_pools(plane, collaboration, processes)
    etree.indent(diagram, space='  ', level=1)
    diagram.tail = '\n'
    previous = diagram.getprevious()
    if previous is not None:
        previous.tail = '\n  '
    return root


def _draw_pools(plane: Element, collaboration: Element, processes: dict[str, Element]) -> None:
    y = float(ORIGIN_Y)
    boxes: dict[str, Box] = {}
    for participant in collaboration.iterfind('bpmn:participant', NS):
        process = processes.get(str(participant.get('processRef')))
        pool = Box(ORIGIN_X, y, 600, 250)
        if process is not None:
            layout = layout_container(process)
            layout.shift(ORIGIN_X + POOL_HEADER, y)
            pool = Box(ORIGIN_X, y, layout.width + POOL_HEADER, layout.height)
            _shape(plane, str(participant.get('id')), pool, isHorizontal='true')
            for lane_id, top, height in layout.lane_bands:
                if lane_id is not None:
                    _shape(plane, lane_id, Box(ORIGIN_X + POOL_HEADER, top, layout.width, height),
                           isHorizontal='true')
            boxes.update(_draw(plane, layout))
        else:
            _shape(plane, str(participant.get('id')), pool, isHorizontal='true')
        boxes[str(participant.get('id'))] = pool
        y = pool.bottom + 40
    for flow in collaboration.iterfind('bpmn:messageFlow', NS):
        source, target = boxes.get(str(flow.get('sourceRef'))), boxes.get(str(flow.get('targetRef')))
        if source is None or target is None:
            continue
        down = target.cy > source.cy
        start = (source.cx, source.bottom if down else source.y)
        end = (source.cx, target.y if down else target.bottom)
        edge = etree.SubElement(plane, _q(BPMNDI, 'BPMNEdge'), id=f'{flow.get("id")}_di',
                                bpmnElement=str(flow.get('id')))
        for x, y_ in (start, end):
            etree.SubElement(edge, _q(DI, 'waypoint'), x=_num(x), y=_num(y_))


def layout_source(source: bytes) -> bytes:
    """The file's bytes with fresh diagram interchange (same XML declaration and encoding)."""
    parser = etree.XMLParser(remove_blank_text=False, resolve_entities=False, no_network=True)
    root = etree.fromstring(source, parser)
    root = apply_layout(root)
    body = etree.tostring(root, encoding='UTF-8', xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b'\n'


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument('files', nargs='+', type=Path)
    parser.add_argument('--check', action='store_true', help='report files whose layout is out of date')
    args = parser.parse_args(list(argv) if argv is not None else None)
    stale = []
    for path in args.files:
        old = path.read_bytes()
        new = layout_source(old)
        if new == old:
            continue
        if args.check:
            stale.append(path)
        else:
            path.write_bytes(new)
            print(f'laid out {path}')
    for path in stale:
        print(f'layout out of date: {path}', file=sys.stderr)
    return 1 if stale else 0


if __name__ == '__main__':
    sys.exit(main())
