"""A Kubernetes API emulation good enough for kopf and the operator: kmock's ``KubernetesEmulator``, extended.

No real kube-apiserver runs where we test, so the integration tests and the local sandbox talk HTTP to this
server. kmock 0.8 stores objects and serves list/watch, merge and JSON patch, and finalizers; ``KubeApi`` adds
what kopf and the operator rely on and kmock leaves out:

- **Metadata.** ``uid``, ``creationTimestamp``; ``resourceVersion`` from one server-wide counter, bumped by
  every write (watch events carry the version a PATCH returned: kopf waits for it before its next step);
  ``generation`` for custom resources and CRDs: 1 at creation, +1 when anything outside ``metadata`` changes
  (outside ``metadata`` and ``status`` when the status subresource is on), +1 when deletion starts, as the API
  server does. A write that changes nothing is a no-op: same ``resourceVersion``, no watch event.
- **Create.** 201; 409 ``AlreadyExists``; ``generateName``; the URL namespace copied into
  ``metadata.namespace`` (400 on a mismatch); ``apiVersion``/``kind`` filled in when absent (400 when wrong);
  names validated (422).
- **Status subresource** (declared per resource): create drops ``status``; a PATCH/PUT of the object keeps the
  stored ``status``; a PATCH/PUT of ``/status`` changes only ``status`` (never ``generation``).
- **PATCH** by ``Content-Type``: merge patch (RFC 7386); JSON patch (a failed ``test`` op or a missing path:
  422); strategic merge patch is refused with 415 for custom resources, as the API server does, and treated as
  a merge patch for built-in kinds (no list merge keys); server-side apply: 415.
- **Optimistic concurrency** (implemented): a ``metadata.resourceVersion`` in a PUT body or in a patch that is
  not the stored one is 409 ``Conflict``; PUT of a custom resource without one is 422; DELETE honours
  ``preconditions`` (``uid``, ``resourceVersion``).
- **Deletion.** Finalizers hold the object with ``deletionTimestamp`` (MODIFIED); the write that empties them
  removes it (MODIFIED, then DELETED); no new finalizers on an object being deleted (422).
- **Owners and garbage collection.** ``ownerReferences`` are stored; when an owner goes, dependents with no
  remaining owner are deleted (background); ``propagationPolicy=Foreground`` holds the owner with the
  ``foregroundDeletion`` finalizer until its blocking dependents are gone; ``Orphan`` strips the references.
  Like the real collector, this runs just after the request, not inside it.
- **Selectors and paging.** ``labelSelector`` (``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``,
  ``k notin (a,b)``) and ``fieldSelector`` (``metadata.name``, ``metadata.namespace``) on list, watch and
  delete-collection; a watched object that starts or stops matching arrives as ADDED or DELETED. ``limit`` and
  ``continue`` on lists.
- **Watch.** Without ``resourceVersion`` (or with ``0``): ADDED for what exists, then changes; from a
  ``resourceVersion``: the retained events after it, or an ERROR 410 once it fell out of ``event_window``;
  ``sendInitialEvents`` with the closing BOOKMARK; periodic bookmarks; ``timeoutSeconds``.
- **Namespaces.** ``GET /api/v1/namespaces`` lists the declared namespaces and every namespace an object was
  created in (created on first use, unless ``strict_namespaces``); deleting a namespace deletes its content.
- **What was asked, for RBAC.** Not enforced, but counted: every request's RBAC attributes (group,
  ``plural[/subresource]``, verb) per ``User-Agent``, in ``rbac_requests`` and ``rbac_requests_by_client``, so
  a test can compare what a client used with what its role grants. Discovery URLs are not counted.
- **Discovery.** Built-in kinds (namespaces, events, secrets, configmaps, ``events.k8s.io`` events, CRDs,
  leases, kopf's peerings) and the project's CRDs, which are also served as ``CustomResourceDefinition``
  objects; creating a CRD over the API declares its resource.

**Speed.** kmock routes each request by matching it against its whole request log, so cost grows with the
square of the request count (300 creates: about a minute of CPU). ``KubeApi`` serves declared resources
and discovery directly (the fast path) as long as no reaction was added beyond the built-in ones, and keeps
the last ``request_log_limit`` requests (``None`` keeps all). Add a kmock reaction
(``api['patch', ...] << 500``) and every request goes through kmock's matching again, so kmock's DSL keeps
working in tests; the built-in reaction then serves the same bodies. ``api.objects`` holds each object's last
``history_limit`` versions, kmock-style.

**Not emulated**, so not proven by tests on it: authentication, RBAC and admission (no schema validation,
defaulting, pruning or CEL rules: an invalid spec is stored as sent), server-side apply, strategic-merge list
semantics, several versions of one resource, consistent snapshots across list pages, the watch cache's timing
and reordering, API priority and fairness (no 429), ``dryRun``, and the controllers that run in a cluster
(nothing schedules or runs a Pod). It relies on kmock 0.8 internals and is pinned to that version.

Run it standalone for the sandbox: ``python -m spot_operator.sandbox.kubeapi --port 0 --kubeconfig PATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import contextvars
import datetime
import functools
import json
import logging
import re
import signal
import sys
import uuid
import weakref
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

import aiohttp.web
import attrs
import jsonpatch
import kmock
import yaml
from kmock._internal.apps import KMockError
from kmock._internal.rendering import Response, StreamingError

logger = logging.getLogger(__name__)

JsonObj = dict[str, Any]
Key = tuple[str | None, str]  # (namespace or None for cluster-scoped, name)
PatchKind = Literal["merge", "json"]

VERBS: Final = frozenset({"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"})
INITIAL_EVENTS_END: Final = "k8s.io/initial-events-end"
FOREGROUND: Final = "foregroundDeletion"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_SYSTEM_META: Final = (
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)


# --- Resources ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceSpec:
    """What the server knows of one resource: enough for discovery and for the write rules."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status: bool = False  # the status subresource is on
    custom: bool = False  # a custom resource: CRD rules (generation, no strategic merge, PUT needs a version)
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.plural)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @functools.cached_property
    def resource(self) -> kmock.resource:
        return kmock.resource(self.group, self.version, self.plural)

    @property
    def qualified(self) -> str:
        """The name the API server uses in messages: ``spotagents.spotoptimizer.io``, ``namespaces``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def tracks_generation(self) -> bool:
        return self.custom or self.kind == "CustomResourceDefinition"

    def info(self) -> kmock.ResourceInfo:
        return kmock.ResourceInfo(
            namespaced=self.namespaced,
            kind=self.kind,
            singular=self.singular or self.kind.lower(),
            verbs=set(VERBS),
            shortnames=set(self.short_names),
            categories=set(self.categories),
            subresources={"status"} if self.status else set(),
        )


NAMESPACES: Final = ResourceSpec(
    "", "v1", "namespaces", "Namespace", namespaced=False, status=True, short_names=("ns",)
)
CUSTOM_RESOURCE_DEFINITIONS: Final = ResourceSpec(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    "CustomResourceDefinition",
    namespaced=False,
    status=True,
    short_names=("crd", "crds"),
)
SECRETS: Final = ResourceSpec("", "v1", "secrets", "Secret")
BUILTIN_RESOURCES: Final = (
    NAMESPACES,
    ResourceSpec("", "v1", "events", "Event", short_names=("ev",)),
    SECRETS,
    ResourceSpec("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    ResourceSpec("events.k8s.io", "v1", "events", "Event", short_names=("ev",)),
    CUSTOM_RESOURCE_DEFINITIONS,
    ResourceSpec("coordination.k8s.io", "v1", "leases", "Lease"),
    ResourceSpec(
        "kopf.dev", "v1", "clusterkopfpeerings", "ClusterKopfPeering", namespaced=False, custom=True
    ),
    ResourceSpec("kopf.dev", "v1", "kopfpeerings", "KopfPeering", custom=True),
)


def crd_resources(crd: Mapping[str, Any]) -> list[ResourceSpec]:
    """The resources a CustomResourceDefinition serves, one per served version."""
    spec = crd["spec"]
    names = spec["names"]
    return [
        ResourceSpec(
            group=spec["group"],
            version=version["name"],
            plural=names["plural"],
            kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            status="status" in (version.get("subresources") or {}),
            custom=True,
            singular=names.get("singular", ""),
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
        )
        for version in spec["versions"]
        if version.get("served", True)
    ]


def project_crds() -> list[JsonObj]:
    """The project's CRDs as the generator makes them, i.e. ``crds/*.yaml`` (a test keeps them equal)."""
    from spot_operator.api import crdgen

    return [crdgen.crd_for(info) for info in crdgen.CRDS]


def load_crds(paths: Iterable[Path]) -> list[JsonObj]:
    """CRDs from YAML files (``crds/*.yaml``, a chart's ``crds/``), skipping other documents."""
    crds: list[JsonObj] = []
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                crds.append(doc)
    return crds


def lookup(specs: Iterable[ResourceSpec], resource: str) -> ResourceSpec:
    """The resource named ``group/version/plural``, ``plural.group``, plural, kind or short name."""
    for spec in specs:
        names = {
            spec.plural,
            spec.kind,
            spec.kind.lower(),
            spec.qualified,
            f"{spec.group}/{spec.version}/{spec.plural}",
            f"{spec.api_version}/{spec.plural}",
            *spec.short_names,
        }
        if resource in names:
            return spec
    raise KeyError(f"undeclared resource: {resource!r}")


# --- Errors ------------------------------------------------------------------------------------------------


def api_error(code: int, reason: str, message: str, **details: Any) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=code, reason=reason, message=message, details=details or None)


def _bad_request(message: str) -> kmock.KubernetesError:
    return api_error(400, "BadRequest", message)


def _no_endpoint() -> kmock.KubernetesError:
    return api_error(404, "NotFound", "the server could not find the requested resource")


def _not_found(spec: ResourceSpec, name: str) -> kmock.KubernetesError:
    return api_error(
        404, "NotFound", f'{spec.qualified} "{name}" not found', name=name, group=spec.group, kind=spec.plural
    )


def _conflict(spec: ResourceSpec, name: str, why: str) -> kmock.KubernetesError:
    return api_error(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {spec.qualified} "{name}": {why}',
        name=name,
        kind=spec.plural,
    )


def _invalid(spec: ResourceSpec, name: str, message: str) -> kmock.KubernetesError:
    return api_error(
        422,
        "Invalid",
        f'{spec.kind} "{name}" is invalid: {message}',
        name=name,
        group=spec.group,
        kind=spec.kind,
    )


def _status_body(exc: kmock.KubernetesError) -> JsonObj:
    body: JsonObj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": exc.message or "",
        "reason": exc.reason or "",
        "code": exc.status,
    }
    if exc.details:
        body["details"] = exc.details
    return body


# --- Selectors ---------------------------------------------------------------------------------------------

_LABEL_KEY = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_LABEL_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_TERM = re.compile(rf"^({_LABEL_KEY})\s+(in|notin)\s+\(([^)]*)\)$")
_EQ_TERM = re.compile(rf"^({_LABEL_KEY})\s*(==|!=|=)\s*({_LABEL_VALUE})$")
_EXISTS_TERM = re.compile(rf"^(!?)\s*({_LABEL_KEY})$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: Literal["in", "notin", "exists", "!"]
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        match self.op:
            case "in":
                return self.key in labels and labels[self.key] in self.values
            case "notin":
                return self.key not in labels or labels[self.key] not in self.values
            case "exists":
                return self.key in labels
            case "!":
                return self.key not in labels


def _split_terms(text: str) -> list[str]:
    """Split on commas outside parentheses: ``a in (x,y),b`` is two terms."""
    terms, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return [term.strip() for term in terms if term.strip()]


@dataclass(frozen=True)
class LabelSelector:
    """A parsed ``labelSelector``; every requirement must hold. Empty matches everything."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        requirements: list[Requirement] = []
        for term in _split_terms(text or ""):
            if found := _SET_TERM.match(term):
                values = frozenset(value.strip() for value in found.group(3).split(",") if value.strip())
                op: Literal["in", "notin"] = "in" if found.group(2) == "in" else "notin"
                requirements.append(Requirement(found.group(1), op, values))
            elif found := _EQ_TERM.match(term):
                value = frozenset({found.group(3)})
                requirements.append(
                    Requirement(found.group(1), "notin" if found.group(2) == "!=" else "in", value)
                )
            elif found := _EXISTS_TERM.match(term):
                requirements.append(Requirement(found.group(2), "!" if found.group(1) else "exists"))
            else:
                raise ValueError(f"unable to parse requirement: {term!r}")
        return cls(tuple(requirements))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in self.requirements)


@dataclass(frozen=True)
class FieldSelector:
    """A parsed ``fieldSelector`` on the fields all resources have: ``metadata.name`` and ``.namespace``."""

    terms: tuple[tuple[str, bool, str], ...] = ()  # (field, equal?, value)

    @classmethod
    def parse(cls, text: str | None) -> FieldSelector:
        terms: list[tuple[str, bool, str]] = []
        for term in _split_terms(text or ""):
            found = re.match(r"^([A-Za-z.]+)\s*(==|!=|=)\s*(.*)$", term)
            if found is None:
                raise ValueError(f"invalid selector: {term!r}")
            if found.group(1) not in ("metadata.name", "metadata.namespace"):
                raise ValueError(f'field label not supported: "{found.group(1)}"')
            terms.append((found.group(1), found.group(2) != "!=", found.group(3).strip()))
        return cls(tuple(terms))

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        for path, equal, value in self.terms:
            actual = meta.get(path.split(".", 1)[1]) or ""
            if (actual == value) != equal:
                return False
        return True


# --- Patches -----------------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, copy-on-write: unchanged sub-dicts are shared, never mutated."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _apply_patch(spec: ResourceSpec, name: str, kind: PatchKind, obj: JsonObj, patch: Any) -> Any:
    if kind == "merge":
        if not isinstance(patch, dict):
            raise _bad_request("a merge patch must be a JSON object")
        return merge_patch(obj, patch)
    if not isinstance(patch, list):
        raise _bad_request("a JSON patch must be a JSON array of operations")
    try:
        return jsonpatch.apply_patch(obj, patch, in_place=False)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise api_error(
            422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
        ) from None
    except (jsonpatch.JsonPatchConflict, jsonpatch.JsonPointerException) as exc:
        raise _invalid(spec, name, f"the JSON patch does not apply: {exc}") from None
    except jsonpatch.InvalidJsonPatch as exc:
        raise _bad_request(f"invalid JSON patch: {exc}") from None


# --- The object store --------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: Mapping[str, Any] | None) -> JsonObj:
    meta = (obj or {}).get("metadata")
    return meta if isinstance(meta, dict) else {}


def _labels(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    labels = _meta(obj).get("labels")
    return labels if isinstance(labels, dict) else {}


def _owner_uids(obj: Mapping[str, Any] | None) -> set[str]:
    refs = _meta(obj).get("ownerReferences") or []
    return {ref["uid"] for ref in refs if isinstance(ref, dict) and isinstance(ref.get("uid"), str)}


def _outside(obj: Mapping[str, Any], skip: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in skip}


class WatchEvent:
    """One change as a watch stream sends it; the object is serialized once, for all watchers."""

    __slots__ = ("_json", "obj", "old", "rv", "type")

    def __init__(self, type: str, obj: JsonObj, old: JsonObj | None, rv: int) -> None:
        self.type = type
        self.obj = obj
        self.old = old
        self.rv = rv
        self._json: bytes | None = None

    def line(self, type: str | None = None) -> bytes:
        if self._json is None:
            self._json = json.dumps(self.obj).encode()
        return b'{"type": "' + (type or self.type).encode() + b'", "object": ' + self._json + b"}\n"


class Gone(Exception):
    """A watch asked for events older than the retained window."""


Listener = Callable[[ResourceSpec, JsonObj | None, JsonObj | None], None]


class ObjectStore:
    """The current objects of every declared resource and the API server's write rules.

    Every method is synchronous, so a snapshot and a subscription taken together see no change in between.
    Objects are never mutated once stored: each write builds a new dict (sharing unchanged parts), so watch
    events and the request log can hold references safely.
    """

    def __init__(
        self, *, event_window: int = 10_000, strict_namespaces: bool = False, listener: Listener | None = None
    ) -> None:
        self.event_window = event_window
        self.strict_namespaces = strict_namespaces
        self._listener = listener
        self._rv = 0
        self._objects: dict[tuple[str, str, str], dict[Key, JsonObj]] = {}
        self._specs: dict[tuple[str, str, str], ResourceSpec] = {}
        self._events: dict[tuple[str, str, str], deque[WatchEvent]] = {}
        self._compacted: dict[tuple[str, str, str], int] = {}
        self._watchers: dict[tuple[str, str, str], set[asyncio.Queue[WatchEvent | None]]] = {}
        self._by_uid: dict[str, tuple[ResourceSpec, Key]] = {}
        self._dependents: dict[str, set[str]] = {}  # owner uid -> dependent uids
        self._per_namespace: Counter[str] = Counter()

    @property
    def resource_version(self) -> int:
        return self._rv

    # Reading.

    def read(self, spec: ResourceSpec, namespace: str | None, name: str) -> JsonObj:
        obj = self._objects.get(spec.key, {}).get((namespace, name))
        if obj is None:
            raise _not_found(spec, name)
        return obj

    def find(self, spec: ResourceSpec, namespace: str | None, name: str) -> JsonObj | None:
        return self._objects.get(spec.key, {}).get((namespace, name))

    def select(
        self,
        spec: ResourceSpec,
        namespace: str | None = None,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
        after: Key | None = None,
    ) -> list[JsonObj]:
        """Objects in key order (namespace, name), as etcd returns them."""
        bucket = self._objects.get(spec.key, {})
        keys = sorted(bucket, key=lambda key: (key[0] or "", key[1]))
        if after is not None:
            keys = [key for key in keys if (key[0] or "", key[1]) > (after[0] or "", after[1])]
        items = [bucket[key] for key in keys if namespace is None or key[0] == namespace]
        if labels is not None and labels.requirements:
            items = [obj for obj in items if labels.matches(_labels(obj))]
        if fields is not None and fields.terms:
            items = [obj for obj in items if fields.matches(obj)]
        return items

    def events_since(self, spec: ResourceSpec, rv: int) -> list[WatchEvent]:
        if rv < self._compacted.get(spec.key, 0):
            raise Gone(rv)
        return [event for event in self._events.get(spec.key, ()) if event.rv > rv]

    def subscribe(self, spec: ResourceSpec) -> asyncio.Queue[WatchEvent | None]:
        queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        self._watchers.setdefault(spec.key, set()).add(queue)
        return queue

    def unsubscribe(self, spec: ResourceSpec, queue: asyncio.Queue[WatchEvent | None]) -> None:
        self._watchers.get(spec.key, set()).discard(queue)

    def close_watches(self) -> None:
        for queues in self._watchers.values():
            for queue in queues:
                queue.put_nowait(None)

    def watcher_count(self) -> int:
        return sum(len(queues) for queues in self._watchers.values())

    # Writing.

    def create(self, spec: ResourceSpec, namespace: str | None, body: Any) -> JsonObj:
        if not isinstance(body, dict):
            raise _bad_request("the body of the request must be a JSON object")
        obj = self._typed(spec, dict(body))
        meta = dict(_meta(obj))
        if spec.namespaced:
            if namespace is None:
                raise _no_endpoint()
            if meta.get("namespace") not in (None, "", namespace):
                raise _bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
            namespace = None
        if meta.get("resourceVersion"):
            raise _bad_request("resourceVersion should not be set on objects to be created")
        name = meta.get("name") or ""
        if not name:
            prefix = meta.get("generateName")
            if not prefix or not isinstance(prefix, str):
                raise _invalid(spec, "", "metadata.name: Required value: name or generateName is required")
            name = self._generate_name(spec, namespace, prefix)
        if not isinstance(name, str) or not _NAME.match(name):
            raise _invalid(
                spec, str(name), f"metadata.name: Invalid value: {name!r}: must be a DNS subdomain"
            )
        if (namespace, name) in self._objects.setdefault(spec.key, {}):
            raise api_error(
                409, "AlreadyExists", f'{spec.qualified} "{name}" already exists', name=name, kind=spec.plural
            )
        if namespace is not None:
            self._ensure_namespace(namespace)
        for system in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            meta.pop(system, None)
        meta["name"] = name
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        if spec.tracks_generation:
            meta["generation"] = 1
        obj["metadata"] = meta
        if spec.status:
            obj.pop("status", None)
        self._prepare_builtin(spec, obj, created=True)
        created = self._commit(spec, (namespace, name), None, obj)
        if _owner_uids(created) and not any(uid in self._by_uid for uid in _owner_uids(created)):
            self._later(lambda: self._collect(meta["uid"]))  # a dangling owner: the collector deletes it
        return created

    def patch(
        self,
        spec: ResourceSpec,
        namespace: str | None,
        name: str,
        kind: PatchKind,
        patch: Any,
        status: bool = False,
    ) -> JsonObj:
        old = self.read(spec, namespace, name)
        patched = _apply_patch(spec, name, kind, old, patch)
        return self._update(spec, (namespace, name), old, patched, status=status, require_version=False)

    def replace(
        self, spec: ResourceSpec, namespace: str | None, name: str, body: Any, status: bool = False
    ) -> JsonObj:
        old = self.read(spec, namespace, name)
        if not isinstance(body, dict):
            raise _bad_request("the body of the request must be a JSON object")
        return self._update(spec, (namespace, name), old, body, status=status, require_version=spec.custom)

    def delete(
        self,
        spec: ResourceSpec,
        namespace: str | None,
        name: str,
        preconditions: Mapping[str, Any] | None = None,
        policy: str = "Background",
    ) -> JsonObj:
        old = self.read(spec, namespace, name)
        meta = _meta(old)
        for field_name, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted = (preconditions or {}).get(field_name)
            if wanted is not None and wanted != meta.get(field_name):
                raise _conflict(
                    spec,
                    name,
                    f"Precondition failed: {label} in precondition: {wanted}, {label} in object meta: "
                    f"{meta.get(field_name)}",
                )
        if policy not in ("Background", "Foreground", "Orphan"):
            raise _bad_request(f"unsupported propagationPolicy: {policy!r}")
        return self._delete(spec, (namespace, name), old, policy)

    # The rules behind the writes.

    def _typed(self, spec: ResourceSpec, obj: JsonObj) -> JsonObj:
        """Fill in ``apiVersion`` and ``kind`` (first, as the API server orders them); refuse wrong ones."""
        for field_name, wanted in (("apiVersion", spec.api_version), ("kind", spec.kind)):
            given = obj.get(field_name)
            if given not in (None, "", wanted):
                raise _bad_request(f"{field_name} {given!r} does not match the resource's {wanted!r}")
        return {"apiVersion": spec.api_version, "kind": spec.kind, **obj}

    def _generate_name(self, spec: ResourceSpec, namespace: str | None, prefix: str) -> str:
        bucket = self._objects.get(spec.key, {})
        while True:
            name = prefix[:58] + uuid.uuid4().hex[:5]
            if (namespace, name) not in bucket:
                return name

    def _ensure_namespace(self, namespace: str) -> None:
        existing = self.find(NAMESPACES, None, namespace)
        if existing is None:
            if self.strict_namespaces:
                raise _not_found(NAMESPACES, namespace)
            self.create(NAMESPACES, None, {"metadata": {"name": namespace}})
        elif _meta(existing).get("deletionTimestamp"):
            raise api_error(
                403,
                "Forbidden",
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    def _prepare_builtin(self, spec: ResourceSpec, obj: JsonObj, created: bool) -> None:
        if spec.key == NAMESPACES.key and created:
            obj["spec"] = {"finalizers": ["kubernetes"], **(obj.get("spec") or {})}
            obj["status"] = {"phase": "Active"}
        elif spec.key == SECRETS.key:
            strings = obj.pop("stringData", None) or {}
            data = dict(obj.get("data") or {})
            data.update(
                {key: base64.b64encode(str(value).encode()).decode() for key, value in strings.items()}
            )
            if data or "data" in obj:
                obj["data"] = data
            obj.setdefault("type", "Opaque")
        elif spec.key == CUSTOM_RESOURCE_DEFINITIONS.key and created:
            storage = [version["name"] for version in obj["spec"]["versions"] if version.get("storage")]
            obj["status"] = {
                "acceptedNames": obj["spec"]["names"],
                "conditions": [
                    {
                        "type": "NamesAccepted",
                        "status": "True",
                        "reason": "NoConflicts",
                        "lastTransitionTime": _now(),
                    },
                    {
                        "type": "Established",
                        "status": "True",
                        "reason": "InitialNamesAccepted",
                        "lastTransitionTime": _now(),
                    },
                ],
                "storedVersions": storage,
            }

    def _update(
        self, spec: ResourceSpec, key: Key, old: JsonObj, new: Any, *, status: bool, require_version: bool
    ) -> JsonObj:
        namespace, name = key
        if not isinstance(new, dict):
            raise _bad_request("the patched object is not a JSON object")
        old_meta = _meta(old)
        new_meta = dict(_meta(new))
        version = new_meta.get("resourceVersion")
        if version not in (None, "") and version != old_meta["resourceVersion"]:
            raise _conflict(
                spec,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        if require_version and version in (None, ""):
            raise _invalid(
                spec, name, "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
            )
        if new_meta.get("name", name) != name:
            raise _bad_request(
                f"the name of the object ({new_meta.get('name')}) does not match the name on the URL ({name})"
            )
        if spec.namespaced and new_meta.get("namespace", namespace) != namespace:
            raise _bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )

        if status:  # the status subresource: only .status moves, the rest stays as stored
            result = dict(old)
            if new.get("status") is None:
                result.pop("status", None)
            else:
                result["status"] = new["status"]
            meta = dict(old_meta)
        else:
            result = self._typed(spec, dict(new))
            if spec.status:
                if "status" in old:
                    result["status"] = old["status"]
                else:
                    result.pop("status", None)
            meta = new_meta
            for system in _SYSTEM_META:
                if system in old_meta:
                    meta[system] = old_meta[system]
                else:
                    meta.pop(system, None)
            if old_meta.get("deletionTimestamp"):
                added = sorted(set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ()))
                if added:
                    raise _invalid(
                        spec,
                        name,
                        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is "
                        f"being deleted, found new finalizers {added}",
                    )
            skip = frozenset({"metadata", "status"} if spec.status else {"metadata"})
            if spec.tracks_generation and _outside(old, skip) != _outside(result, skip):
                meta["generation"] = int(old_meta.get("generation") or 0) + 1
            self._prepare_builtin(spec, result, created=False)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        result["metadata"] = meta
        if result == old:
            return old  # a no-op write: no new version, no event
        updated = self._commit(spec, key, old, result)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._remove(spec, key, updated)
        return updated

    def _delete(self, spec: ResourceSpec, key: Key, old: JsonObj, policy: str) -> JsonObj:
        meta = _meta(old)
        if meta.get("deletionTimestamp"):
            return old  # already being deleted
        uid = meta["uid"]
        if policy == "Orphan":
            for dependent in list(self._dependents.get(uid, ())):
                self._drop_owner(dependent, uid)
        finalizers = list(meta.get("finalizers") or ())
        blocking = [dep for dep in self._dependents.get(uid, ()) if self._blocks(dep, uid)]
        if policy == "Foreground" and blocking and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        if spec.key == NAMESPACES.key:
            return self._terminate_namespace(key[1], old)
        if not finalizers:
            return self._remove(spec, key, old)
        marked_meta = dict(
            meta, deletionTimestamp=_now(), deletionGracePeriodSeconds=0, finalizers=finalizers
        )
        if spec.tracks_generation:
            marked_meta["generation"] = int(meta.get("generation") or 0) + 1
        marked = self._commit(spec, key, old, dict(old, metadata=marked_meta))
        if policy == "Foreground":
            for dependent in list(self._dependents.get(uid, ())):
                self._later(functools.partial(self._delete_uid, dependent, "Foreground"))
        return marked

    def _commit(self, spec: ResourceSpec, key: Key, old: JsonObj | None, new: JsonObj) -> JsonObj:
        self._rv += 1
        new["metadata"]["resourceVersion"] = str(self._rv)
        self._objects.setdefault(spec.key, {})[key] = new
        self._specs[spec.key] = spec
        uid = new["metadata"]["uid"]
        self._by_uid[uid] = (spec, key)
        self._reindex_owners(uid, _owner_uids(old), _owner_uids(new))
        if old is None and key[0] is not None:
            self._per_namespace[key[0]] += 1
        self._emit(spec, WatchEvent("ADDED" if old is None else "MODIFIED", new, old, self._rv))
        if self._listener is not None:
            self._listener(spec, old, new)
        return new

    def _remove(self, spec: ResourceSpec, key: Key, last: JsonObj) -> JsonObj:
        self._rv += 1
        final = dict(last, metadata=dict(_meta(last), resourceVersion=str(self._rv)))
        del self._objects[spec.key][key]
        uid = final["metadata"]["uid"]
        self._by_uid.pop(uid, None)
        owners = _owner_uids(final)
        self._reindex_owners(uid, owners, set())
        self._emit(spec, WatchEvent("DELETED", final, last, self._rv))
        if self._listener is not None:
            self._listener(spec, last, None)
        if self._dependents.get(uid):
            self._later(lambda: self._collect_dependents_of(uid))
        for owner in owners:
            self._later(functools.partial(self._release_foreground, owner))
        namespace = key[0]
        if namespace is not None:
            self._per_namespace[namespace] -= 1
            if not self._per_namespace[namespace]:
                del self._per_namespace[namespace]
                self._later(lambda: self._finish_namespace(namespace))
        return final

    def _emit(self, spec: ResourceSpec, event: WatchEvent) -> None:
        history = self._events.setdefault(spec.key, deque(maxlen=max(1, self.event_window)))
        if len(history) == history.maxlen:
            self._compacted[spec.key] = history[0].rv
        history.append(event)
        for queue in self._watchers.get(spec.key, ()):
            queue.put_nowait(event)

    # Garbage collection and namespace termination: they run just after the request, as controllers do.

    def _later(self, fn: Callable[[], None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            fn()
        else:
            loop.call_soon(self._guarded, fn)

    @staticmethod
    def _guarded(fn: Callable[[], None]) -> None:
        try:
            fn()
        except kmock.KubernetesError as exc:  # e.g. a precondition raced with a client: nothing to collect
            logger.debug("Background collection skipped: %s", exc.message)

    def _reindex_owners(self, uid: str, before: set[str], after: set[str]) -> None:
        for owner in before - after:
            dependents = self._dependents.get(owner)
            if dependents is not None:
                dependents.discard(uid)
                if not dependents:
                    del self._dependents[owner]
        for owner in after - before:
            self._dependents.setdefault(owner, set()).add(uid)

    def _blocks(self, dependent: str, owner: str) -> bool:
        located = self._by_uid.get(dependent)
        if located is None:
            return False
        obj = self.find(located[0], *located[1])
        refs = _meta(obj).get("ownerReferences") or []
        return any(
            ref.get("uid") == owner and ref.get("blockOwnerDeletion") for ref in refs if isinstance(ref, dict)
        )

    def _collect(self, uid: str) -> None:
        """Delete the object if none of its owners exists any more."""
        located = self._by_uid.get(uid)
        if located is None:
            return
        spec, key = located
        obj = self._objects[spec.key][key]
        if not any(owner in self._by_uid for owner in _owner_uids(obj)):
            self._delete(spec, key, obj, "Background")

    def _collect_dependents_of(self, owner: str) -> None:
        for dependent in list(self._dependents.get(owner, ())):
            self._collect(dependent)

    def _delete_uid(self, uid: str, policy: str) -> None:
        located = self._by_uid.get(uid)
        if located is not None:
            spec, key = located
            self._delete(spec, key, self._objects[spec.key][key], policy)

    def _release_foreground(self, owner: str) -> None:
        located = self._by_uid.get(owner)
        if located is None:
            return
        spec, key = located
        obj = self._objects[spec.key][key]
        finalizers = list(_meta(obj).get("finalizers") or ())
        if FOREGROUND not in finalizers or any(
            self._blocks(dep, owner) for dep in self._dependents.get(owner, ())
        ):
            return
        finalizers.remove(FOREGROUND)
        self._update(
            spec,
            key,
            obj,
            dict(obj, metadata=dict(_meta(obj), finalizers=finalizers)),
            status=False,
            require_version=False,
        )

    def _drop_owner(self, dependent: str, owner: str) -> None:
        located = self._by_uid.get(dependent)
        if located is None:
            return
        spec, key = located
        obj = self._objects[spec.key][key]
        refs = [ref for ref in _meta(obj).get("ownerReferences") or [] if ref.get("uid") != owner]
        meta = (
            dict(_meta(obj), ownerReferences=refs)
            if refs
            else {k: v for k, v in _meta(obj).items() if k != "ownerReferences"}
        )
        self._update(spec, key, obj, dict(obj, metadata=meta), status=False, require_version=False)

    def _terminate_namespace(self, namespace: str, old: JsonObj) -> JsonObj:
        meta = dict(_meta(old), deletionTimestamp=_now(), deletionGracePeriodSeconds=0)
        marked = self._commit(
            NAMESPACES, (None, namespace), old, dict(old, metadata=meta, status={"phase": "Terminating"})
        )
        self._later(lambda: self._drain_namespace(namespace))
        return marked

    def _drain_namespace(self, namespace: str) -> None:
        for spec_key, bucket in list(self._objects.items()):
            for key, obj in list(bucket.items()):
                if key[0] == namespace and key in bucket:
                    self._delete(self._specs[spec_key], key, obj, "Background")
        self._finish_namespace(namespace)

    def _finish_namespace(self, namespace: str) -> None:
        existing = self.find(NAMESPACES, None, namespace)
        if (
            existing is not None
            and _meta(existing).get("deletionTimestamp")
            and not self._per_namespace[namespace]
        ):
            self._remove(NAMESPACES, (None, namespace), existing)


# --- Requests ----------------------------------------------------------------------------------------------

_RAW_REQUEST: contextvars.ContextVar[aiohttp.web.BaseRequest] = contextvars.ContextVar("kubeapi_raw_request")


@dataclass(frozen=True)
class _Path:
    group: str
    version: str | None
    namespace: str | None = None
    plural: str | None = None
    name: str | None = None
    subresource: str | None = None


def parse_path(path: str) -> _Path | None:
    """Split an API path; unlike kmock 0.8's parser it understands ``/api/v1/namespaces[/NAME[/status]]``."""
    parts = [part for part in path.strip("/").split("/") if part]
    version: str | None
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 2 and parts[0] == "apis":
        group, version, rest = parts[1], (parts[2] if len(parts) > 2 else None), parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    return _Path(
        group=group,
        version=version,
        namespace=namespace,
        plural=rest[0] if rest else None,
        name=rest[1] if len(rest) > 1 else None,
        subresource="/".join(rest[2:]) or None,
    )


def _flag(params: Mapping[str, str], name: str) -> bool:
    """A boolean query parameter, parsed as the API server does (Go's ``strconv.ParseBool``)."""
    return params.get(name) in ("1", "t", "T", "true", "TRUE", "True")


def _action(parsed: _Path | None, method: str, params: Mapping[str, str]) -> kmock.action | None:
    if parsed is None:
        return None
    if method == "GET" and _flag(params, "watch"):
        return kmock.action.WATCH
    actions = {"GET": kmock.action.FETCH, "PATCH": kmock.action.UPDATE, "DELETE": kmock.action.DELETE}
    if parsed.name is None:
        actions = {"GET": kmock.action.LIST, "POST": kmock.action.CREATE}
    return actions.get(method)


class RbacRequest(NamedTuple):
    """What RBAC would check for one request: API group ("" is core), resource (``plural[/subresource]``)
    and verb."""

    group: str
    resource: str
    verb: str


_RBAC_VERBS: Final = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def rbac_request(parsed: _Path | None, method: str, params: Mapping[str, str]) -> RbacRequest | None:
    """The RBAC attributes of a request, as the API server derives them; None for a non-resource URL
    (``/api``, ``/apis``, ``/version``, ``/apis/GROUP/VERSION``: discovery) or a method RBAC does not know.

    GET and HEAD are ``watch`` with ``watch=true``, else ``get`` with a name and ``list`` without; DELETE is
    ``delete`` with a name and ``deletecollection`` without; POST, PUT, PATCH are create, update, patch.
    """
    if parsed is None or parsed.plural is None:
        return None
    resource = parsed.plural if parsed.subresource is None else f"{parsed.plural}/{parsed.subresource}"
    named = parsed.name is not None
    if method in ("GET", "HEAD"):
        verb = "watch" if _flag(params, "watch") else "get" if named else "list"
    elif method == "DELETE":
        verb = "delete" if named else "deletecollection"
    elif method in _RBAC_VERBS:
        verb = _RBAC_VERBS[method]
    else:
        return None
    return RbacRequest(parsed.group, resource, verb)


def _parse_request(
    raw: aiohttp.web.BaseRequest, body: bytes, request_id: int, parsed: _Path | None
) -> kmock.Request:
    params = dict(raw.query)
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    return kmock.Request(
        id=request_id,
        raw_request=raw,
        url=raw.url,
        method=raw.method,
        params=params,
        headers=dict(raw.headers),
        cookies=dict(raw.cookies),
        body=body,
        text=body.decode("utf-8", errors="replace"),
        data=data,
        action=_action(parsed, raw.method, params),
        resource=None
        if parsed is None
        else kmock.resource(group=parsed.group, version=parsed.version, plural=parsed.plural),
        namespace=None if parsed is None else parsed.namespace,
        name=None if parsed is None else parsed.name,
        subresource=None if parsed is None else parsed.subresource,
    )


def _header(request: kmock.Request, name: str) -> str:
    for key, value in request.headers.items():
        if key.lower() == name:
            return value
    return ""


@dataclass(frozen=True)
class Reply:
    status: int
    body: JsonObj | None = None
    stream: AsyncIterator[bytes] | None = None


@dataclass(frozen=True)
class WatchParams:
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    since: int | None  # None: start with the current objects
    send_initial: bool
    bookmarks: bool
    timeout: float | None

    def render(self, event: WatchEvent) -> bytes | None:
        """The line this watcher gets for the event, or None; objects that start or stop matching move."""
        if self.namespace is not None and _meta(event.obj).get("namespace") != self.namespace:
            return None
        now = self.matches(event.obj)
        if event.type == "MODIFIED" and (self.labels.requirements or self.fields.terms):
            before = self.matches(event.old or {})
            if now and not before:
                return event.line("ADDED")
            if before and not now:
                return event.line("DELETED")
        return event.line() if now else None

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return self.labels.matches(_labels(obj)) and self.fields.matches(obj)


def _selectors(params: Mapping[str, str]) -> tuple[LabelSelector, FieldSelector]:
    try:
        return LabelSelector.parse(params.get("labelSelector")), FieldSelector.parse(
            params.get("fieldSelector")
        )
    except ValueError as exc:
        raise _bad_request(str(exc)) from None


def _number(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text in (None, ""):
        return None
    try:
        value = int(text)
    except ValueError:
        raise _bad_request(f"{name}: invalid value {text!r}") from None
    if value < 0:
        raise _bad_request(f"{name}: must be non-negative")
    return value


def _encode_continue(rv: int, key: Key) -> str:
    raw = json.dumps({"rv": rv, "ns": key[0], "name": key[1]}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str) -> tuple[int, Key]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), (data["ns"], str(data["name"]))
    except (ValueError, KeyError, TypeError):
        raise _bad_request("continue: invalid token") from None


# --- The server --------------------------------------------------------------------------------------------


@attrs.define(kw_only=True, repr=False)
class KubeApi(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator with the API server's write rules, watches and a fast path (see above)."""

    request_log_limit: int | None = 1000  # requests kept for assertions; None keeps all
    history_limit: int | None = 50  # versions kept per object in ``objects``; None keeps all
    event_window: int = 10_000  # watch events kept per resource for resuming from a resourceVersion
    bookmark_interval: float = 60.0  # idle seconds before a BOOKMARK, when the watch allows them
    fast_path: bool = True  # serve declared resources directly while no reactions were added
    strict_namespaces: bool = False  # 404 for objects in an unknown namespace (as the API server)
    namespaces: Sequence[str] = ("default",)
    crds: Sequence[Mapping[str, Any]] | None = None  # None: the project's CRDs

    _store: ObjectStore = attrs.field(init=False)
    _specs: dict[tuple[str, str, str], ResourceSpec] = attrs.field(init=False, factory=dict)
    _reaction: kmock.View | None = attrs.field(init=False, default=None)
    _builtin_reactions: int = attrs.field(init=False, default=0)
    _served: int = attrs.field(init=False, default=0)
    _fast_served: int = attrs.field(init=False, default=0)
    _server_tasks: weakref.WeakSet[asyncio.Task[Any]] = attrs.field(init=False, factory=weakref.WeakSet)
    _rbac: Counter[tuple[str, RbacRequest]] = attrs.field(init=False, factory=Counter)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._store = ObjectStore(
            event_window=self.event_window, strict_namespaces=self.strict_namespaces, listener=self._on_commit
        )
        for spec in BUILTIN_RESOURCES:
            self.declare(spec)
        for crd in project_crds() if self.crds is None else self.crds:
            self._store.create(CUSTOM_RESOURCE_DEFINITIONS, None, dict(crd))
        for namespace in self.namespaces:
            self._store.create(NAMESPACES, None, {"metadata": {"name": namespace}})
        self._reaction = (self.fallback**1)[self._is_declared] << self._serve_reaction
        self._builtin_reactions = len(self._payloads)

    def __repr__(self) -> str:
        counts = {spec.plural: len(self._store.select(spec)) for spec in self._specs.values()}
        objects = ", ".join(f"{plural}={count}" for plural, count in sorted(counts.items()) if count)
        return f"<KubeApi rv={self.resource_version} served={self._served} objects: {objects or 'none'}>"

    # Public helpers for tests, the sandbox and the CLI.

    @property
    def store(self) -> ObjectStore:
        return self._store

    @property
    def resource_version(self) -> int:
        return self._store.resource_version

    @property
    def requests_served(self) -> int:
        return self._served

    @property
    def fast_path_served(self) -> int:
        return self._fast_served

    @property
    def request_log(self) -> list[kmock.Request]:
        """The retained requests, oldest first (kmock's views such as ``api['patch']`` read the same log)."""
        return list(self._requests)

    @property
    def rbac_requests(self) -> Counter[RbacRequest]:
        """How often each (group, resource, verb) was asked for since the start, by any client: what a role
        would have to grant. Every request counts, including those answered with an error."""
        return sum(self.rbac_requests_by_client.values(), Counter())

    @property
    def rbac_requests_by_client(self) -> dict[str, Counter[RbacRequest]]:
        """The same counts per client, keyed by the ``User-Agent`` header ("" when absent)."""
        clients: dict[str, Counter[RbacRequest]] = {}
        for (agent, asked), count in self._rbac.items():
            clients.setdefault(agent, Counter())[asked] += count
        return clients

    @property
    def server_tasks(self) -> weakref.WeakSet[asyncio.Task[Any]]:
        """The asyncio tasks serving connections, so an in-loop kopf need not wait for them when it stops."""
        return self._server_tasks

    def declare(self, spec: ResourceSpec) -> None:
        self._specs[spec.key] = spec
        self.resources[spec.resource] = spec.info()

    def spec(self, resource: str) -> ResourceSpec:
        """A declared resource by ``group/version/plural``, ``plural.group``, plural, kind or short name."""
        return lookup(self._specs.values(), resource)

    def find(self, resource: str, namespace: str | None, name: str) -> JsonObj | None:
        """The stored object as a GET would return it, or None."""
        return self._store.find(self.spec(resource), namespace, name)

    def select(self, resource: str, namespace: str | None = None, label_selector: str = "") -> list[JsonObj]:
        return self._store.select(self.spec(resource), namespace, LabelSelector.parse(label_selector))

    def create_object(self, resource: str, body: Mapping[str, Any], namespace: str | None = None) -> JsonObj:
        """Create an object directly, with the same rules as a POST (for seeding a test or the sandbox)."""
        spec = self.spec(resource)
        namespace = namespace or _meta(body).get("namespace") or ("default" if spec.namespaced else None)
        return self._store.create(spec, namespace, dict(body))

    def close_watches(self) -> None:
        """End every open watch stream (when the server stops)."""
        self._store.close_watches()

    # Routing: the fast path, or kmock's reactions.

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        body = await raw_request.read()
        parsed = parse_path(raw_request.path)
        request = _parse_request(raw_request, body, self._served, parsed)
        if (asked := rbac_request(parsed, raw_request.method, request.params)) is not None:
            self._rbac[(raw_request.headers.get("User-Agent", ""), asked)] += 1
        self._served += 1
        self._remember(request)
        self._server_tasks.add(raw_request.task)
        if (task := asyncio.current_task()) is not None:
            self._server_tasks.add(task)
        token = _RAW_REQUEST.set(raw_request)
        raw_response: aiohttp.web.StreamResponse | None = None
        try:
            try:
                if self.limit is not None and self._served > self.limit:
                    raise KMockError("Too many requests have been served so far.")
                return await self._handle(request)
            except StreamingError as exc:
                raw_response = exc.args[0]
                if exc.__cause__ is not None:
                    raise exc.__cause__ from None
                raise
        except kmock.KubernetesError as exc:  # an API answer (404, 409, 422...), not a failure of the server
            if raw_response is None or not raw_response.prepared:
                return await self._render_error(exc)
            await self._stream_error(exc, raw_response)
            await raw_response.write_eof()
            return raw_response
        except Exception as exc:
            if not self._errors:
                raise
            self._errors[-1].append(exc)
            if raw_response is None or not raw_response.prepared:
                return await self._render_error(exc)
            await self._stream_error(exc, raw_response)
            await raw_response.write_eof()
            return raw_response
        finally:
            _RAW_REQUEST.reset(token)
            object.__setattr__(request, "_raw_request", None)  # the log keeps the parsed request only

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if self.fast_path and len(self._payloads) == self._builtin_reactions:
            if self._is_declared(request):
                self._fast_served += 1
                return await self._render_fast(self._serve(request))
            discovery = self._discovery(request)
            if discovery is not None:
                self._fast_served += 1
                return aiohttp.web.json_response(await discovery(request))
        return await kmock.RawHandler._handle(self, request)

    def _remember(self, request: kmock.Request) -> None:
        self._requests.append(request)
        limit = self.request_log_limit
        if limit is not None and len(self._requests) > limit + max(1, limit // 10):
            del self._requests[: len(self._requests) - limit]  # trimmed in batches: O(1) per request

    def _is_declared(self, request: kmock.Request) -> bool:
        resource = request.resource
        return resource is not None and resource.plural is not None and self._spec_of(request) is not None

    def _spec_of(self, request: kmock.Request) -> ResourceSpec | None:
        resource = request.resource
        if resource is None or resource.version is None or resource.plural is None or resource.group is None:
            return None
        spec = self._specs.get((resource.group, resource.version, resource.plural))
        if spec is None and resource in self.resources:  # declared the kmock way: kmock.resources[...] = ...
            info = self.resources[resource]
            spec = ResourceSpec(
                resource.group,
                resource.version,
                resource.plural,
                kind=info.kind or resource.plural.capitalize(),
                namespaced=info.namespaced is not False,
                status="status" in info.subresources,
                custom="." in resource.group,
            )
            self._specs[spec.key] = spec
        return spec

    def _discovery(self, request: kmock.Request) -> Callable[[kmock.Request], Any] | None:
        if request.method != kmock.method.GET:
            return None
        path = request.url.path.rstrip("/") or "/"
        resource = request.resource
        if resource is not None and resource.plural is None and request.namespace is None:
            if resource.version is None:
                return self._serve_group
            return self._serve_version
        return {
            "/": self._serve_root,
            "/version": self._serve_server_version,
            "/api": self._serve_api,
            "/apis": self._serve_apis,
        }.get(path)

    async def _render_fast(self, reply: Reply) -> aiohttp.web.StreamResponse:
        if reply.stream is None:
            return aiohttp.web.json_response(reply.body, status=reply.status)
        response = aiohttp.web.StreamResponse(status=reply.status)
        response.content_type = "application/json"
        await response.prepare(_RAW_REQUEST.get())
        with contextlib.suppress(ConnectionError):
            async for chunk in reply.stream:
                if chunk:
                    await response.write(chunk)
            await response.write_eof()
        return response

    async def _serve_reaction(self, request: kmock.Request) -> Response:
        """The built-in kmock reaction: the same replies as the fast path, through kmock's matching."""
        reply = self._serve(request)
        return Response(status=reply.status, payload=reply.body if reply.stream is None else reply.stream)

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if isinstance(exc, kmock.KubernetesError):
            return aiohttp.web.json_response(_status_body(exc), status=exc.status)
        return await super()._render_error(exc)

    # kmock's own fallbacks see only undeclared resources here: there is nothing to serve.

    async def _serve_list(self, request: kmock.Request) -> kmock.Payload:
        raise _no_endpoint()

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[kmock.Payload]:
        raise _no_endpoint()
        yield  # pragma: no cover

    async def _serve_fetch(self, request: kmock.Request) -> kmock.Payload:
        raise _no_endpoint()

    async def _serve_create(self, request: kmock.Request) -> kmock.Payload:
        raise _no_endpoint()

    async def _serve_update(self, request: kmock.Request) -> kmock.Payload:
        raise _no_endpoint()

    async def _serve_delete(self, request: kmock.Request) -> kmock.Payload:
        raise _no_endpoint()

    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        """kmock's APIResourceList, with two fixes: the core group is ``v1`` (not ``/v1``), and subresources
        carry no short names or categories (kubectl warns of ambiguous names otherwise)."""
        payload = await super()._serve_version(request)
        if isinstance(payload, dict):
            payload["groupVersion"] = str(payload.get("groupVersion", "")).lstrip("/")
            for resource in payload.get("resources", ()):
                if "/" in resource["name"]:
                    resource.update(shortNames=[], categories=[], verbs=["get", "patch", "update"])
        return payload

    def _get_resources(self) -> list[kmock.resource]:
        return kmock.KubernetesScaffold._get_resources(self)

    # Serving one request for a declared resource.

    def _serve(self, request: kmock.Request) -> Reply:
        spec = self._spec_of(request)
        assert spec is not None  # routed here only for declared resources
        namespace, name, subresource = request.namespace, request.name, request.subresource
        if (namespace is not None and not spec.namespaced) or (
            spec.namespaced and namespace is None and (name is not None or request.method != kmock.method.GET)
        ):
            raise _no_endpoint()
        if subresource is not None and (subresource != "status" or not spec.status):
            raise _no_endpoint()
        status = subresource == "status"
        params = request.params
        match request.method:
            case kmock.method.GET if _flag(params, "watch"):
                return Reply(200, stream=self._watch(spec, self._watch_params(spec, request)))
            case kmock.method.GET if name is None:
                return Reply(200, self._list(spec, namespace, params))
            case kmock.method.GET if name is not None:
                return Reply(200, self._store.read(spec, namespace, name))
            case kmock.method.POST if name is None:
                return Reply(201, self._store.create(spec, namespace, request.data))
            case kmock.method.PATCH if name is not None:
                kind = self._patch_kind(spec, _header(request, "content-type"))
                return Reply(200, self._store.patch(spec, namespace, name, kind, request.data, status=status))
            case kmock.method.PUT if name is not None:
                return Reply(200, self._store.replace(spec, namespace, name, request.data, status=status))
            case kmock.method.DELETE:
                options = request.data if isinstance(request.data, dict) else {}
                policy = params.get("propagationPolicy") or options.get("propagationPolicy")
                if policy is None:
                    policy = "Orphan" if options.get("orphanDependents") is True else "Background"
                if name is None:
                    return Reply(200, self._delete_collection(spec, namespace, params, policy))
                preconditions = (
                    options.get("preconditions") if isinstance(options.get("preconditions"), dict) else None
                )
                return Reply(200, self._store.delete(spec, namespace, name, preconditions, policy))
        raise api_error(
            405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
        )

    @staticmethod
    def _patch_kind(spec: ResourceSpec, content_type: str) -> PatchKind:
        media = content_type.split(";", 1)[0].strip().lower()
        if media == "application/merge-patch+json":
            return "merge"
        if media == "application/json-patch+json":
            return "json"
        if media == "application/strategic-merge-patch+json" and not spec.custom:
            return "merge"  # built-in kinds only; list merge keys are not emulated
        raise api_error(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format ({media or 'none'}) - accepted media types "
            "include: application/json-patch+json, application/merge-patch+json",
        )

    def _list(self, spec: ResourceSpec, namespace: str | None, params: Mapping[str, str]) -> JsonObj:
        labels, fields = _selectors(params)
        limit = _number(params, "limit")
        rv, after = self._store.resource_version, None
        if params.get("continue"):
            rv, after = _decode_continue(params["continue"])
        items = self._store.select(spec, namespace, labels, fields, after=after)
        meta: JsonObj = {"resourceVersion": str(rv)}
        if limit and len(items) > limit:
            last = _meta(items[limit - 1])
            meta["continue"] = _encode_continue(rv, (last.get("namespace"), last["name"]))
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {"apiVersion": spec.api_version, "kind": f"{spec.kind}List", "metadata": meta, "items": items}

    def _delete_collection(
        self, spec: ResourceSpec, namespace: str | None, params: Mapping[str, str], policy: str
    ) -> JsonObj:
        labels, fields = _selectors(params)
        items = [
            self._store.delete(spec, _meta(obj).get("namespace"), _meta(obj)["name"], None, policy)
            for obj in self._store.select(spec, namespace, labels, fields)
        ]
        meta = {"resourceVersion": str(self._store.resource_version)}
        return {"apiVersion": spec.api_version, "kind": f"{spec.kind}List", "metadata": meta, "items": items}

    def _watch_params(self, spec: ResourceSpec, request: kmock.Request) -> WatchParams:
        params = request.params
        labels, fields = _selectors(params)
        if request.name is not None:  # the legacy watch of one object by its URL
            fields = FieldSelector((*fields.terms, ("metadata.name", True, request.name)))
        send_initial = _flag(params, "sendInitialEvents")
        bookmarks = _flag(params, "allowWatchBookmarks")
        if send_initial and not bookmarks:
            raise _bad_request("sendInitialEvents is forbidden for watch unless allowWatchBookmarks is true")
        version = params.get("resourceVersion") or ""
        since = None if version in ("", "0") or send_initial else _number(params, "resourceVersion")
        timeout = _number(params, "timeoutSeconds")
        return WatchParams(request.namespace, labels, fields, since, send_initial, bookmarks, timeout or None)

    async def _watch(self, spec: ResourceSpec, params: WatchParams) -> AsyncIterator[bytes]:
        yield b""  # let the headers go out even if nothing happens for a while
        raw = _RAW_REQUEST.get(None)
        loop = asyncio.get_running_loop()
        queue = self._store.subscribe(spec)  # the subscription and the snapshot below see the same moment
        try:
            if params.since is None:
                initial = self._store.select(spec, params.namespace, params.labels, params.fields)
                lines = [WatchEvent("ADDED", obj, None, 0).line() for obj in initial]
                if params.send_initial:
                    lines.append(self._bookmark(spec, initial_end=True))
            else:
                try:
                    backlog = self._store.events_since(spec, params.since)
                except Gone:
                    yield self._expired(params.since)
                    return
                lines = [line for event in backlog if (line := params.render(event)) is not None]
            for line in lines:
                yield line
            deadline = None if params.timeout is None else loop.time() + params.timeout
            last_sent = loop.time()
            while True:
                event = queue.get_nowait() if not queue.empty() else None
                if event is None:
                    wait = 5.0
                    if deadline is not None:
                        wait = min(wait, deadline - loop.time())
                    if params.bookmarks:
                        wait = min(wait, last_sent + self.bookmark_interval - loop.time())
                    try:
                        event = await asyncio.wait_for(queue.get(), timeout=max(0.0, wait))
                    except TimeoutError:
                        if deadline is not None and loop.time() >= deadline:
                            return
                        if raw is not None and (raw.transport is None or raw.transport.is_closing()):
                            return
                        if params.bookmarks and loop.time() >= last_sent + self.bookmark_interval:
                            last_sent = loop.time()
                            yield self._bookmark(spec)
                        continue
                    if event is None:
                        return  # the server is closing
                line = params.render(event)
                if line is not None:
                    last_sent = loop.time()
                    yield line
        finally:
            self._store.unsubscribe(spec, queue)

    def _bookmark(self, spec: ResourceSpec, initial_end: bool = False) -> bytes:
        meta: JsonObj = {"resourceVersion": str(self._store.resource_version)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        obj = {"kind": spec.kind, "apiVersion": spec.api_version, "metadata": meta}
        return json.dumps({"type": "BOOKMARK", "object": obj}).encode() + b"\n"

    def _expired(self, since: int) -> bytes:
        status = _status_body(
            api_error(410, "Expired", f"too old resource version: {since} ({self._store.resource_version})")
        )
        return json.dumps({"type": "ERROR", "object": status}).encode() + b"\n"

    def _on_commit(self, spec: ResourceSpec, old: JsonObj | None, new: JsonObj | None) -> None:
        """Keep kmock's ``objects`` (with history) in step, and serve the resources of new CRDs."""
        current = new if new is not None else old
        assert current is not None
        meta = _meta(current)
        key = (spec.resource, meta.get("namespace"), meta["name"])
        if key not in self.objects:
            self.objects[key] = new or {}
        elif new is None:
            self.objects[key].delete()
        else:
            history = self.objects[key].history
            history.append(new)
            if self.history_limit is not None and len(history) > self.history_limit:
                del history[: len(history) - self.history_limit]
        if new is not None and old is None and spec.key == CUSTOM_RESOURCE_DEFINITIONS.key:
            for served in crd_resources(new):
                self.declare(served)


# --- Serving over TCP, kubeconfig, command line ------------------------------------------------------------


@dataclass
class Served:
    """A running server: its URL, for clients and kubeconfigs."""

    api: KubeApi
    host: str
    port: int
    kubeconfig: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.asynccontextmanager
async def serve(
    api: KubeApi, *, host: str = "127.0.0.1", port: int = 0, kubeconfig: Path | None = None
) -> AsyncIterator[Served]:
    """Serve ``api`` over HTTP in the running loop (port 0: a free one), optionally with a kubeconfig."""
    async with api:
        server = aiohttp.web.Server(api, handler_cancellation=True, access_log=None)
        runner = aiohttp.web.ServerRunner(server, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = aiohttp.web.TCPSite(runner, host, port)
            await site.start()
            bound_host, bound_port = runner.addresses[0][:2]
            served = Served(api=api, host=bound_host, port=bound_port)
            if kubeconfig is not None:
                served.kubeconfig = write_kubeconfig(kubeconfig, served.url)
            yield served
        finally:
            api.close_watches()
            await runner.cleanup()


def write_kubeconfig(path: Path, url: str, namespace: str = "default", name: str = "spot-sandbox") -> Path:
    """A kubeconfig with one context pointing at ``url``, without credentials (the emulation has no auth)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}}],
        "users": [{"name": name, "user": {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m spot_operator.sandbox.kubeapi",
        description="Serve the Kubernetes API emulation (no auth) and write a kubeconfig pointing at it.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--kubeconfig", type=Path, help="where to write the kubeconfig")
    parser.add_argument(
        "--namespace", action="append", dest="namespaces", help="declared namespace (repeatable)"
    )
    parser.add_argument(
        "--crd", action="append", type=Path, default=[], help="extra CRD YAML file (repeatable)"
    )
    parser.add_argument(
        "--strict-namespaces", action="store_true", help="404 for objects in unknown namespaces"
    )
    parser.add_argument("--request-log-limit", type=int, default=1000, help="requests kept in memory")
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> None:
    api = KubeApi(
        namespaces=tuple(args.namespaces or ("default",)),
        crds=[*project_crds(), *load_crds(args.crd)],
        strict_namespaces=args.strict_namespaces,
        request_log_limit=args.request_log_limit,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve(api, host=args.host, port=args.port, kubeconfig=args.kubeconfig) as served:
        where = f" (kubeconfig: {served.kubeconfig})" if served.kubeconfig else ""
        print(f"Kubernetes API emulation serving {served.url}{where}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_run(_arguments(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
