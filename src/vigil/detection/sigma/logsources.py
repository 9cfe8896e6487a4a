"""Log-source mapping: which events a rule's ``logsource`` means, as pySigma processing pipelines.

Windows rules go through pySigma's own pipelines, as Zircolite and pySigma's backends do: Sysmon
categories become their Channel and EventID (``process_creation``: Sysmon EventID 1), services their
Channel (``security``: ``Security``); ``process_creation`` and the registry categories get a second
variant on the Security log (4688, 4657, with their field names). Other products (Linux, web servers,
Zeek, Suricata) are mapped by the declarative table in ``mappings.py`` onto Vigil's ECS events. A rule
no mapping covers is evaluated as written.
"""

from __future__ import annotations

from functools import cache

from sigma.pipelines.sysmon.sysmon import sysmon_pipeline
from sigma.pipelines.windows.windows import windows_audit_pipeline, windows_logsource_pipeline
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation, FieldMappingTransformation

from vigil.detection.sigma.mappings import SOURCE_MAPPINGS, SourceMapping

# Categories whose events Windows also records in the Security log (pysigma-pipeline-windows).
AUDIT_CATEGORIES = frozenset({"process_creation", "registry_event", "registry_set", "registry_add"})


@cache
def _windows_sysmon() -> ProcessingPipeline:
    pipeline: ProcessingPipeline = sysmon_pipeline() + windows_logsource_pipeline()
    return pipeline


@cache
def _windows_audit() -> ProcessingPipeline:
    pipeline: ProcessingPipeline = windows_audit_pipeline() + windows_logsource_pipeline()
    return pipeline


@cache
def _as_written() -> ProcessingPipeline:
    return ProcessingPipeline(name="As written", items=[])


def _mapping_pipeline(mapping: SourceMapping) -> ProcessingPipeline:
    def condition() -> LogsourceCondition:  # one per item: pySigma ties a condition to its pipeline
        return LogsourceCondition(category=mapping.category, product=mapping.product, service=mapping.service)

    items: list[ProcessingItem] = []
    if mapping.fields:
        items.append(ProcessingItem(identifier=f"vigil_{mapping.name}_fields",
                                    transformation=FieldMappingTransformation(
                                        {name: target for name, target in mapping.fields.items()}),
                                    rule_conditions=[condition()]))
    if mapping.conditions:
        required: dict[str, int | str | list[str]] = {
            name: [str(item) for item in value] if isinstance(value, tuple) else value
            for name, value in mapping.conditions.items()}
        items.append(ProcessingItem(identifier=f"vigil_{mapping.name}_conditions",
                                    transformation=AddConditionTransformation(required),
                                    rule_conditions=[condition()]))
    return ProcessingPipeline(name=f"Vigil log source {mapping.name}", priority=20, items=items)


def _applies(mapping: SourceMapping, product: str | None, category: str | None, service: str | None) -> bool:
    """pySigma's LogsourceCondition: every part the mapping names must equal the rule's."""
    return all(want is None or want == have for want, have in
               ((mapping.product, product), (mapping.category, category), (mapping.service, service)))


@cache
def variant_pipelines(product: str | None, category: str | None, service: str | None) -> tuple[ProcessingPipeline, ...]:
    """The pipelines a rule of this log source is compiled with: one per variant."""
    if product == "windows":
        pipelines = [_windows_sysmon()]
        if category in AUDIT_CATEGORIES:
            pipelines.append(_windows_audit())
        return tuple(pipelines)
    matching = [(mapping, pipeline) for mapping, pipeline in zip(SOURCE_MAPPINGS, _mapping_pipelines(), strict=True)
                if _applies(mapping, product, category, service)]
    # Only the most specific mappings: a `service: rdp` Zeek rule must not also run on every Zeek log
    # through the product-wide `zeek` mapping (one variant each would OR them).
    best = max((_specificity(mapping) for mapping, _ in matching), default=0)
    mapped = [pipeline for mapping, pipeline in matching if _specificity(mapping) == best]
    return tuple(mapped) or (_as_written(),)


def _specificity(mapping: SourceMapping) -> int:
    return sum(part is not None for part in (mapping.product, mapping.category, mapping.service))


@cache
def _mapping_pipelines() -> tuple[ProcessingPipeline, ...]:
    return tuple(_mapping_pipeline(mapping) for mapping in SOURCE_MAPPINGS)
