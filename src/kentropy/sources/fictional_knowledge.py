"""Fictional knowledge (Chang et al. 2024, paraphrased by Kim et al. 2025): loading, checking, fetching.

A file is a JSON list of records: ``train_context`` (str), ``paraphrases`` (list of str) and, for each
probe kind, ``<kind>_input`` / ``<kind>_target`` lists of equal length. The published files are fetched
by URL with a pinned sha256; the default config writes generated records in the same schema.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pandas as pd

from ..core.errors import KentropyError
from ..core.hashing import sha256
from ..core.io import atomic_file

#: Probe kinds of the paper and the record fields that hold them.
PROBE_KINDS = {"memorization": "mem", "semantic": "gen", "composition": "hard_gen"}
#: The injected splits: each paraphrase-split paragraph every injection, paraphrased; each once-split group once.
SPLITS = ("paraphrase", "once")
#: The split and the kind of a score over every split or every kind.
ALL = "all"


class KnowledgeError(KentropyError, ValueError):
    """A fictional-knowledge file is malformed or failed its checksum; the message names file and record."""


def _check_record(record, index: int, source: str, n_paraphrases: int) -> None:
    where = f"{source}: record {index}"
    if not isinstance(record, dict):
        raise KnowledgeError(f"{where}: expected an object, got {type(record).__name__}")
    if not isinstance(record.get("train_context"), str) or not record["train_context"].strip():
        raise KnowledgeError(f"{where}: field 'train_context' is missing or empty")
    paraphrases = record.get("paraphrases")
    if not isinstance(paraphrases, list) or not paraphrases:
        raise KnowledgeError(f"{where}: field 'paraphrases' is missing or empty")
    if len(paraphrases) < n_paraphrases:
        raise KnowledgeError(
            f"{where}: field 'paraphrases' has {len(paraphrases)} entries, the injection schedule needs {n_paraphrases}"
        )
    for i, text in enumerate(paraphrases):
        if not isinstance(text, str) or not text.strip():
            raise KnowledgeError(f"{where}: field 'paraphrases[{i}]' is empty")
    for prefix in PROBE_KINDS.values():
        inputs, targets = record.get(f"{prefix}_input"), record.get(f"{prefix}_target")
        for field, value in ((f"{prefix}_input", inputs), (f"{prefix}_target", targets)):
            if not isinstance(value, list) or not value:
                raise KnowledgeError(f"{where}: field '{field}' is missing or empty")
        if len(inputs) != len(targets):
            raise KnowledgeError(
                f"{where}: {len(inputs)} '{prefix}_input' probes but {len(targets)} '{prefix}_target' targets"
            )
        for i, target in enumerate(targets):
            if not isinstance(target, str) or not target.strip():
                raise KnowledgeError(f"{where}: field '{prefix}_target[{i}]' is empty")


def load_records(path: str | Path, n_paraphrases: int = 0) -> list[dict]:
    """Read and check a fictional-knowledge file; ``n_paraphrases`` is how many the schedule will use."""
    path = Path(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise KnowledgeError(f"{path}: cannot read fictional knowledge ({err})") from err
    if not isinstance(records, list) or not records:
        raise KnowledgeError(f"{path}: expected a non-empty JSON list of records")
    for index, record in enumerate(records):
        _check_record(record, index, str(path), n_paraphrases)
    return records


def probe_files(paraphrase: str, once: str) -> pd.DataFrame:
    """``probe_table`` of the paraphrase and once fictional-knowledge files (what an evaluation scores)."""
    return probe_table({"paraphrase": load_records(paraphrase), "once": load_records(once)})


def probe_table(records_by_split: dict[str, list[dict]]) -> pd.DataFrame:
    """One row per probe: split, paragraph, kind, probe (index within the kind), input, target."""
    rows = []
    for split, records in records_by_split.items():
        for paragraph, record in enumerate(records):
            for kind, prefix in PROBE_KINDS.items():
                pairs = zip(record[f"{prefix}_input"], record[f"{prefix}_target"])
                for probe, (text, target) in enumerate(pairs):
                    rows.append(
                        {
                            "split": split,
                            "paragraph": paragraph,
                            "kind": kind,
                            "probe": probe,
                            "input": text,
                            "target": target,
                        }
                    )
    return pd.DataFrame(rows)


def fetch_file(url: str, expected_sha256: str, out: str | Path) -> None:
    """Download ``url`` (any urllib scheme, so ``file://`` in tests) to ``out`` if its sha256 matches."""
    with atomic_file(out) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as f:
                while chunk := response.read(1 << 20):
                    f.write(chunk)
        except OSError as err:
            raise KnowledgeError(f"{url}: download failed ({err})") from err
        actual = sha256(tmp)
        if actual != expected_sha256:
            raise KnowledgeError(f"{url}: sha256 is {actual}, the config pins {expected_sha256}")
