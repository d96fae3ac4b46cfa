"""The reference's annotation files: task regions and the labeled features inside them.

``annotations/annotation_task_features.geojson`` holds the tasks (a region annotators
covered, ``oe_annotations_task_id``, ``oe_start_time``, ``oe_end_time``);
``annotations/annotation_features.geojson`` the annotations (a point or polygon,
``oe_annotations_task_id`` and ``oe_labels``, a mapping of label names to values).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import shapely
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from rslp.errors import ProjectError
from rslp.request import load_request

ANNOTATIONS_DIR = "annotations"
TASKS_FILE = "annotation_task_features.geojson"
FEATURES_FILE = "annotation_features.geojson"
TASK_ID = "oe_annotations_task_id"
LABELS = "oe_labels"
COVER_TOLERANCE = 1e-9  # degrees: a label on its task's edge is inside


@dataclass
class Annotation:
    """One labeled feature (lon/lat).

    Attributes:
        index: its position in the annotation file (for messages).
        geometry: the geometry.
        labels: ``oe_labels``.
    """

    index: int
    geometry: BaseGeometry
    labels: dict[str, Any]


@dataclass
class AnnotationTask:
    """A region annotators covered, its time range, and its annotations.

    Attributes:
        task_id: ``oe_annotations_task_id`` (as a string).
        geometry: the region (lon/lat).
        time_range: the task's time range.
        annotations: the labeled features of the task.
    """

    task_id: str
    geometry: BaseGeometry
    time_range: tuple[datetime, datetime]
    annotations: list[Annotation] = field(default_factory=list)


def _features(path: Path) -> list[Any]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProjectError(path, "annotation file does not exist") from None
    except (OSError, ValueError) as e:
        raise ProjectError(path, f"not valid JSON: {e}") from None
    feats = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(feats, list) or not feats:
        raise ProjectError(path, "expected a FeatureCollection with features", "features")
    return feats


def load_tasks(tasks_file: Path, features_file: Path) -> list[AnnotationTask]:
    """Read the tasks and attach each annotation to its task (tasks in file order).

    Raises:
        ProjectError: naming the file and feature for a missing or unknown task id, a
            missing ``oe_labels`` or a bad geometry (the times are read as requests are).
    """
    tasks: dict[str, AnnotationTask] = {}
    for i, f in enumerate(load_request(tasks_file)):
        tid = f.properties.get(TASK_ID)
        if tid is None:
            raise ProjectError(tasks_file, f"task has no {TASK_ID}", f"features[{i}].properties")
        if str(tid) in tasks:
            raise ProjectError(
                tasks_file, f"duplicate {TASK_ID} {tid!r}", f"features[{i}].properties.{TASK_ID}"
            )
        tasks[str(tid)] = AnnotationTask(str(tid), f.geometry, f.time_range)
    for i, raw in enumerate(_features(features_file)):
        key = f"features[{i}]"
        props = raw.get("properties") if isinstance(raw, dict) else None
        if not isinstance(props, dict):
            raise ProjectError(features_file, "expected a Feature with properties", key)
        tid = props.get(TASK_ID)
        if tid is None or str(tid) not in tasks:
            raise ProjectError(
                features_file,
                f"{TASK_ID} {tid!r} is not a task of {tasks_file.name}",
                f"{key}.properties.{TASK_ID}",
            )
        labels = props.get(LABELS)
        if not isinstance(labels, dict) or not labels:
            raise ProjectError(
                features_file, f"expected {LABELS}: a mapping of label values", f"{key}.properties"
            )
        try:
            geom = shapely.geometry.shape(raw.get("geometry"))
        except Exception as e:  # shapely raises several types for bad GeoJSON
            raise ProjectError(features_file, f"bad geometry: {e}", f"{key}.geometry") from None
        task = tasks[str(tid)]
        if not task.geometry.buffer(COVER_TOLERANCE).covers(geom):
            raise ProjectError(
                features_file,
                f"the annotation lies outside its task {tid!r} ({tasks_file.name})",
                f"{key}.geometry",
                hint="fix the geometry or the task id",
            )
        task.annotations.append(Annotation(i, geom, labels))
    return list(tasks.values())


def label_of(annotation: Annotation, label_property: str | None, source: Path) -> Any:
    """The annotation's class value: ``oe_labels[label_property]`` (default: the only key).

    Raises:
        ProjectError: when the key is missing, or several keys and none chosen.
    """
    labels = annotation.labels
    if label_property is None:
        if len(labels) != 1:
            raise ProjectError(
                source,
                f"{LABELS} has several keys {sorted(labels)}; say which holds the class",
                f"features[{annotation.index}].properties.{LABELS}",
                hint="set label_property in finetune_strategies.yaml",
            )
        return next(iter(labels.values()))
    if label_property not in labels:
        raise ProjectError(
            source,
            f"{LABELS} has no {label_property!r} (keys: {sorted(labels)})",
            f"features[{annotation.index}].properties.{LABELS}",
        )
    return labels[label_property]
